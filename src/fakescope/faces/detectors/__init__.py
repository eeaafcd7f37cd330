"""Face detectors behind one contract (`FaceDetector`): images in, faces in each image's own pixels out.

One backend per module (yuface, MTCNN, Haar), the fallback between them, and
`create_face_detector`, which picks them by name.
"""

from fakescope.constants import DEFAULT_FACE_DETECTOR
from fakescope.faces.detectors.base import FACE_DETECTORS, FaceDetector
from fakescope.faces.detectors.factory import create_face_detector
from fakescope.faces.detectors.fallback import FaceDetectorSource, FallbackFaceDetector
from fakescope.faces.detectors.haar import HaarFaceDetector
from fakescope.faces.detectors.mtcnn import MTCNNFaceDetector
from fakescope.faces.detectors.yuface import YuFaceDetector

__all__ = [
    "DEFAULT_FACE_DETECTOR",
    "FACE_DETECTORS",
    "FaceDetector",
    "FaceDetectorSource",
    "FallbackFaceDetector",
    "HaarFaceDetector",
    "MTCNNFaceDetector",
    "YuFaceDetector",
    "create_face_detector",
]
