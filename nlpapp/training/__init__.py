"""LoRA (and full) fine-tuning: features, the training loop, checkpoints and adapters."""
