"""Shared fixtures: the shipped default model, a few real val crops, and one export of it (fp32 + int8-static).

The export is traced once per session (about 20 s on 2 cores) and scored on 200 val crops;
the tests copy its files before tampering with them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import shared

EVAL_CROPS = 200
CALIB_CROPS = 64


@pytest.fixture(scope="session")
def dfdc_faces() -> Path:
    return shared("dfdc_faces")


@pytest.fixture(scope="session")
def default_model():
    from fakescope.models import DEFAULT_MODEL, create_model

    return create_model(DEFAULT_MODEL, pretrained=True).eval()


@pytest.fixture(scope="session")
def val_crops(dfdc_faces) -> list[np.ndarray]:
    """8 real val crops (4 real, 4 fake), uint8 RGB at the model's input size."""
    from fakescope.data.model_data import labelled_samples
    from fakescope.models import DEFAULT_MODEL, get_pretrained_cfg
    from fakescope.optimize.evaluation import load_crops

    samples = labelled_samples(DEFAULT_MODEL, "val", root=dfdc_faces, limit=8)
    return load_crops(samples, get_pretrained_cfg(DEFAULT_MODEL))


@pytest.fixture(scope="session")
def exported(tmp_path_factory, dfdc_faces):
    """{variant: ExportedModel} for fp32 and int8-static of the default model, each scored on 200 val crops."""
    from fakescope.models import DEFAULT_MODEL
    from fakescope.optimize.export import export_variants

    out = tmp_path_factory.mktemp("onnx")
    exports = export_variants(
        DEFAULT_MODEL, out, ["fp32", "int8-static"], calib_crops=CALIB_CROPS, data=dfdc_faces, eval_limit=EVAL_CROPS
    )
    return {e.variant: e for e in exports}
