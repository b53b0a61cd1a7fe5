"""The Underpaint inference server: transport, jobs, imaging and the diffusers engine."""

__version__ = "0.1.0"
