"""`python -m runward.control.api`: serve the status API with settings from the environment."""

from runward.control.api.app import serve

if __name__ == "__main__":
    serve()
