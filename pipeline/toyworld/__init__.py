"""A toy world and the small video model trained on it: renderer, captions, detector, VAE, training."""
