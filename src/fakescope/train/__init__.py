"""Training: datasets of face crops, augmentations, the loop, and export of shipped weights."""
