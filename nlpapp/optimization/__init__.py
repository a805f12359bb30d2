"""Making models smaller and faster with the libraries made for it: quantization (torchao,
bitsandbytes), pruning (``torch.nn.utils.prune``, head removal), and the measured trade-off
of each against the original model."""
