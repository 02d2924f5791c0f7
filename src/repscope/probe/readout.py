"""`transfer_accuracy`'s old address, kept for user code: it lives in `repscope.kernels.readout`."""

from repscope.kernels.readout import SCALINGS, transfer_accuracy

__all__ = ["SCALINGS", "transfer_accuracy"]
