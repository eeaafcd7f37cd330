"""The data layer under training, evaluation and export: what a labelled item is, how folders are
read, how they are split, and the datasets that feed models.

    samples       Sample / VideoSample / SequenceSample, the label map
    readers       labels.csv, real/ + fake/ folders, DFDC folders (`load_samples`)
    splits        group splits and `recorded_split`: every tool rebuilds a model's splits the same way
    crop_cache    face crops cut once from labelled videos, as inference cuts them
    images        face-crop / picture datasets
    sequences     windows of one video's face crops in time order, for temporal models
    audio         speech-clip datasets and waveform augmentations
    speech_sources  readers of the shared speech corpora (digits, speech_synth)

Heavy modules (torch datasets) are imported from their own module, not from here.
"""

from fakescope.data.readers import class_folders, load_samples, read_class_folders, read_dfdc_metadata, read_labels_csv
from fakescope.data.samples import LABELS, SPLITS, Sample, SequenceSample, VideoSample
from fakescope.data.splits import (
    DEFAULT_CALIB_FRACTION,
    DEFAULT_SEED,
    DEFAULT_VAL_FRACTION,
    Splits,
    SplitSettings,
    assign_splits,
    check_no_leakage,
    recorded_split,
    split_groups,
    stratified_split_groups,
    three_way_split,
)

__all__ = [
    "DEFAULT_CALIB_FRACTION",
    "DEFAULT_SEED",
    "DEFAULT_VAL_FRACTION",
    "LABELS",
    "SPLITS",
    "Sample",
    "SequenceSample",
    "SplitSettings",
    "Splits",
    "VideoSample",
    "assign_splits",
    "check_no_leakage",
    "class_folders",
    "load_samples",
    "read_class_folders",
    "read_dfdc_metadata",
    "read_labels_csv",
    "recorded_split",
    "split_groups",
    "stratified_split_groups",
    "three_way_split",
]
