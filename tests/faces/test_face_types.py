from __future__ import annotations

import dataclasses

import pytest

from fakescope.faces import Face


def test_face_geometry() -> None:
    face = Face(box=(10.0, 20.0, 50.0, 100.0), score=0.9)
    assert face.width == 40.0
    assert face.height == 80.0
    assert face.area == 3200.0
    assert face.center == (30.0, 60.0)
    assert face.landmarks is None


def test_as_xywh_is_rounded_json_friendly() -> None:
    face = Face(box=(10.04, 20.26, 50.11, 100.0), score=0.9)
    xywh = face.as_xywh()
    assert xywh == [10.0, 20.3, 40.1, 79.7]
    assert all(type(v) is float for v in xywh)


def test_face_is_frozen() -> None:
    face = Face(box=(0.0, 0.0, 1.0, 1.0), score=1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        face.score = 0.5  # type: ignore[misc]
