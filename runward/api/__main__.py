"""`python -m runward.api`: serve the status API with settings from the environment."""

from runward.api.app import serve

if __name__ == "__main__":
    serve()
