"""train_export.py: export a PyTorch CNN in training form for lnsc (shared by export_cnn.py
and export_resnet.py).

Design: lnsc trains the graph it is given, so a model with BatchNormalization must keep the
node with its training outputs. PyTorch 1.13 does that with
torch.onnx.export(..., training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False)
at opsets 9 to 17 (BatchNorm is not folded into the Conv, and the node lists its running
statistics as outputs): below opset 14 the node has the five outputs (Y, mean, var,
saved_mean, saved_var) that mean training mode; from 14 it has training_mode=1 and three
outputs (Y, running_mean, running_var). Exporting traces the module once in train mode,
which moves the BatchNorm buffers (running_mean, running_var, num_batches_tracked) by one
step on the dummy input, and the file would hold those moved values. So the module's
state_dict is taken before the export and every initializer is written back from it by name:
the file holds exactly the module's initial (seeded, PyTorch default) values, and an
initializer with no state_dict entry of the same shape is an error. The input "input" is
[N, 1, 28, 28] with a dynamic batch N, the output "logits" [N, 10]. The file is then checked
with onnx.checker (full check), its opset, node ops and initializers are printed, and the node
ops must be the expected list; each BatchNormalization must be in training form.
"""
import sys
from typing import List

import numpy as np
import torch
from torch import nn


def bn_training_form(node, opset: int) -> bool:
    """Whether a BatchNormalization node computes batch statistics and running outputs."""
    if opset >= 14:
        tm = [a.i for a in node.attribute if a.name == "training_mode"]
        return tm == [1] and len(node.output) == 3 and all(node.output)
    return len(node.output) == 5 and all(node.output[:3])


def export_training(model: nn.Module, path: str, opset: int, expected_ops: List[str]) -> int:
    """Writes model (in train mode) to path; returns a process exit status."""
    import onnx  # imported late: export does not need it, the check does
    from onnx import numpy_helper

    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.train()
    dummy = torch.zeros(2, 1, 28, 28)
    torch.onnx.export(
        model, dummy, path,
        input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
        opset_version=opset, training=torch.onnx.TrainingMode.TRAINING,
        do_constant_folding=False)
    model.load_state_dict(initial)  # undo the trace's BatchNorm step in the module too

    m = onnx.load(path)
    for t in m.graph.initializer:
        if t.name not in initial or list(initial[t.name].shape) != list(t.dims):
            print(f"error: initializer {t.name}{list(t.dims)} has no state_dict entry",
                  file=sys.stderr)
            return 1
        arr = initial[t.name].numpy().astype(numpy_helper.to_array(t).dtype)
        t.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(arr), t.name))
    onnx.save(m, path)

    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    ops = [n.op_type for n in m.graph.node]
    print("wrote", path)
    print("opset:", [(o.domain or "ai.onnx", o.version) for o in m.opset_import])
    print("nodes:", ", ".join(ops))
    print("initializers:", ", ".join(f"{t.name}{list(t.dims)}" for t in m.graph.initializer))
    if ops != expected_ops:
        print("error: unexpected node ops (wanted " + ", ".join(expected_ops) + ")",
              file=sys.stderr)
        return 1
    bad = [n.name for n in m.graph.node
           if n.op_type == "BatchNormalization" and not bn_training_form(n, opset)]
    if bad:
        print("error: BatchNormalization not in training form: " + ", ".join(bad),
              file=sys.stderr)
        return 1
    return 0
