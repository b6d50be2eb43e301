"""The sampling path: latents → plans of onnxruntime calls (per mode) → batching → encoding."""
from service.sampling.latents import latent_codes, latents
from service.sampling.modes import MODES, plan, sample
from service.sampling.plans import Call, Plan, direct, generate, run, run_async, score
from service.sampling.samples import Samples, SamplingError, resolve_labels

__all__ = ["MODES", "Call", "Plan", "Samples", "SamplingError", "direct", "generate", "latent_codes", "latents",
           "plan", "resolve_labels", "run", "run_async", "sample", "score"]
