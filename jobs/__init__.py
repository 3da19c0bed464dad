"""Batch jobs that read the pipeline's topics and the store and publish reports."""
