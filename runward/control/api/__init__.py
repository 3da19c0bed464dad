"""The platform team's status API: stage health, per-agent artifacts, attack stories and
manual promotion through Observe -> Audit -> Enforce.

Entry points: `runward.control.api.app.create_app(...)` builds the FastAPI app,
`runward.control.api.app.serve(settings)` runs it with uvicorn.
"""
