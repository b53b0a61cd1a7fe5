"""The inference side: the engine interface, the diffusers engine, the model registry and loading."""
