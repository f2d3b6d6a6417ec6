"""Front ends over the Studio for other people's tools: AUTOMATIC1111's HTTP API (`/sdapi/v1`).

An adapter translates names and shapes onto the Studio's requests; it never re-implements a task, so the
same validation, limits, recipes and Library serve every surface. FastAPI, never Gradio; importing it does
no work.
"""
