"""The model runtime: resolving and loading models, device and dtype policy, batching."""
