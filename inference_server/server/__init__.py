"""The HTTP server: settings, the core that turns requests into jobs, the job queue, the FastAPI
app with its schemas and request guard, and running it under uvicorn."""
