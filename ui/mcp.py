"""Tools for AI assistants, served by Gradio's MCP server with `--mcp`: endpoints without a place on the
page, each a Studio submit like the page's (same queue, validation, recipes and Library), described so an
assistant can act on them. The images come back as image content. The Library's `library_search` and
`lineage` endpoints are tools too, as Gradio serves every public endpoint.
"""

from __future__ import annotations

import gradio as gr
from PIL import Image

from pipelines import Studio, Txt2ImgRequest, settings_of

from .events import GPU, answer, owner


def render(studio: Studio, model: str) -> None:
    """The MCP tools, inside the page's Blocks but not shown on it."""

    async def text_to_image(prompt: str, negative_prompt: str = "", seed: float = -1, progress=gr.Progress(),
                            request: gr.Request = None) -> Image.Image:
        """Make a picture from a description and keep it in the person's Atelier Library (with its recipe).

        Write the prompt as a short description of what the picture shows. The server's model draws at its
        own size, steps and guidance; the embedded model knows simple coloured shapes ("a small red circle at
        the top left on a white background").

        Args:
            prompt: what the picture should show, in plain words.
            negative_prompt: what it should not show (may be empty).
            seed: a whole number from 0 to 4294967295 to make the same picture again, or -1 for a new one.

        Returns:
            The picture (PNG, its settings written inside it). `library_search` finds it again with its
            seed and recipe.
        """
        preset = studio.preset(model)
        own = {name: getattr(preset, s.preset) for name, s in settings_of(Txt2ImgRequest).items() if s.preset}
        asked = Txt2ImgRequest(model=model, prompt=prompt, negative_prompt=negative_prompt, seed=seed, **own)
        # awaited as the task endpoints are: an assistant that gives up stops the work
        return (await answer(lambda: studio.submit(asked, **owner(request)), progress)).images[0]

    with gr.Row(visible=False):
        inputs = [gr.Textbox(label="prompt"), gr.Textbox("", label="negative_prompt"),
                  gr.Number(-1, precision=0, label="seed")]
        # One output: Gradio's MCP server hands a queued event's several outputs back as one text.
        picture = gr.Image(type="pil", format="png", label="image")
        button = gr.Button("text_to_image")
    button.click(text_to_image, inputs, picture, api_name="text_to_image", concurrency_id=GPU)
