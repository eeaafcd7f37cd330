"""Stacked ensembles: the meta-model is a logistic regression over member logits."""

import pytest
import torch

from fakescope.errors import ModelError
from fakescope.models import create_model, list_models
from fakescope.models.stack import StackedModel


@pytest.fixture(scope="module")
def members():
    torch.manual_seed(0)
    return [
        create_model("faceswap-effnet-lite0.dfdc", pretrained=False),
        create_model("faceswap-effnet-lite0.dfdc_cutmix", pretrained=False),
    ]


def test_stack_is_registered():
    assert "stack-faceswap.dfdc" in list_models("stack-*")


def test_forward_is_logistic_regression_over_member_logits(members):
    stack = StackedModel(members[0].pretrained_cfg, members, ["a", "b"]).eval()
    with torch.no_grad():
        stack.head.weight.copy_(torch.tensor([[1.5, -0.5]]))
        stack.head.bias.fill_(0.25)
        x = torch.randn(3, 3, 64, 64)
        z = torch.stack([m(x)["logits"] for m in members], dim=1)
        out = stack(x)
    assert out["feat"].shape == (3, 2)
    assert torch.allclose(out["prob"], torch.sigmoid(z @ torch.tensor([1.5, -0.5]) + 0.25), atol=1e-5)


def test_state_dict_is_the_meta_model_only(members):
    stack = StackedModel(members[0].pretrained_cfg, members, ["a", "b"])
    state = stack.state_dict()
    assert set(state) == {"head.weight", "head.bias"}
    other = StackedModel(members[0].pretrained_cfg, members, ["a", "b"])
    other.load_state_dict({k: v + 1 for k, v in state.items()})
    assert torch.equal(other.head.bias, state["head.bias"] + 1)


def test_members_must_share_one_input(members):
    aigen = create_model("aigen-effnet-lite0.ffhq", pretrained=False)
    with pytest.raises(ModelError, match="input_size"):
        StackedModel(members[0].pretrained_cfg, [members[0], aigen], ["a", "aigen"])
    with pytest.raises(ModelError, match="at least two"):
        StackedModel(members[0].pretrained_cfg, members[:1], ["a"])
