"""Route modules of the status API, each an APIRouter mounted under /v1 by `runward.control.api.app`."""
