"""ganserve's serving side: onnxruntime, numpy and pillow; never torch."""
