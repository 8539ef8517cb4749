"""The ground floor both halves use: devices, the model hub and its cache, tiny test models, images."""
