"""Files in and out: CSV data, samples and params files, set files, UAI networks, images, DOT. Knows nothing of models."""
