"""Mixed precision follows the hardware: emulated bf16 on a CPU is slower than fp32, not faster."""

import pytest
import torch

from fakescope.train import loop


@pytest.mark.parametrize("native, dtype", [(True, torch.bfloat16), (False, torch.float32)])
def test_cpu_autocast_is_bf16_only_where_the_cpu_computes_it(monkeypatch, native, dtype):
    monkeypatch.setattr(loop, "cpu_has_native_bf16", lambda: native)
    layer = torch.nn.Linear(4, 3)
    with loop.autocast(torch.device("cpu")):
        assert layer(torch.randn(2, 4)).dtype == dtype
