"""Styles: templates that wrap the prompt, bundles of settings, a readable file of the person's own, the
embedded model's shipped ones, AUTOMATIC1111's styles.csv imported, recorded in the recipe."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from pipelines import Style, StyleBook, Txt2ImgRequest, ValidationError
from pipelines.front.requests import MAX_PROMPT_CHARS
from pipelines.front.styles import disagreements, expand, read_file
from tests.conftest import as_array, make_studio

OFFERED = (("night", "{prompt} on a black background", "white background"), ("detail", "sharp, detailed", "blurry"))


def test_templates_wrap_the_prompt_or_follow_it_and_apply_in_order():
    assert expand("a red circle", "", ("night",), OFFERED) == ("a red circle on a black background", "white background")
    assert expand("a red circle", "ugly", ("detail",), OFFERED) == ("a red circle, sharp, detailed", "ugly, blurry")
    assert expand("x", "", ("night", "detail"), OFFERED) == ("x on a black background, sharp, detailed", "white background, blurry")
    assert expand("x", "y", (), OFFERED) == ("x", "y")


def test_the_book_saves_renames_deletes_in_a_readable_file(tmp_path):
    book = StyleBook(tmp_path / "data" / "styles.json")
    book.save(Style("poster", "{prompt}, flat colours", "photo", {"steps": 12, "loras": [["style", 0.5]], "path": "/etc"}))
    book.save(Style("quiet", "{prompt}"))
    data = json.loads((tmp_path / "data" / "styles.json").read_text())  # plain JSON a person can edit
    assert [s["name"] for s in data["styles"]] == ["poster", "quiet"]
    assert book.own()[0].settings == {"steps": 12, "loras": [["style", 0.5]]}  # only known settings survive
    book.rename("poster", "Poster 2")
    with pytest.raises(ValidationError, match="already have"):
        book.rename("quiet", "Poster 2")
    with pytest.raises(ValidationError, match="not one of your styles"):
        book.delete("nothing")
    book.delete("quiet")
    assert [s.name for s in book.own()] == ["Poster 2"]
    with pytest.raises(ValidationError, match="needs a name"):
        book.save(Style.from_dict({"name": "   "}))


def test_a_public_demo_keeps_nobodys_styles(tmp_path):
    book = StyleBook(tmp_path / "styles.json", writable=False)
    with pytest.raises(ValidationError, match="public demo"):
        book.save(Style("mine"))
    assert not (tmp_path / "styles.json").exists()


def test_automatic1111_styles_csv_is_imported(tmp_path):
    csv = tmp_path / "styles.csv"
    csv.write_text('name,prompt,negative_prompt\n"Cinematic","{prompt}, film grain, (dramatic:1.2)","cartoon"\n'
                   'Plain,"sharp focus",\n,"no name",\n', encoding="utf-8")
    book = StyleBook(tmp_path / "styles.json")
    assert book.import_a1111(csv) == 2
    styles = {s.name: s for s in book.own()}
    assert styles["Cinematic"].prompt == "{prompt}, film grain, (dramatic:1.2)" and styles["Cinematic"].negative_prompt == "cartoon"
    assert styles["Plain"].prompt == "sharp focus"
    (tmp_path / "bad.csv").write_text("title,text\nx,y\n")
    with pytest.raises(ValidationError, match="no 'name' column"):
        book.import_a1111(tmp_path / "bad.csv")


def test_the_embedded_model_ships_night_and_a_style_is_recorded_as_its_expanded_prompt(tmp_path):
    from shapeworld.judge import judge

    book = StyleBook(tmp_path / "styles.json")
    book.save(Style("mine", "a large {prompt}"))
    studio = make_studio(styles=book)
    assert {"night", "mine"} <= set(studio.styles_for("shapes"))
    request = Txt2ImgRequest(model="shapes", prompt="blue square", styles=["mine", "night"], seed=1, num_images=4,
                             width=64, height=64)
    result = studio.submit(request).result()
    recipe = result.recipes[0]
    assert recipe.prompt == "a large blue square on a black background" and recipe.styles == ["mine", "night"]
    assert recipe.negative_prompt == "white background"
    assert "styles" not in recipe.values()  # restoring fills the expanded prompt: the styles are not applied twice
    assert sum(judge(as_array(image)).background == "black" for image in result.images) >= 3
    with pytest.raises(ValidationError, match="no style named 'gone'"):
        studio.submit(Txt2ImgRequest(model="shapes", prompt="x", styles="gone"))


def test_the_length_limit_is_the_typed_texts_and_a_styles_words_do_not_count_against_it(tmp_path):
    """2,000 typed characters are accepted with a style that adds more; 2,001 are refused, saying so."""
    book = StyleBook(tmp_path / "styles.json")
    book.save(Style("long", "{prompt}, " + "detailed " * 40, "blurry " * 20))
    studio = make_studio(styles=book)
    typed = ("a large blue square on a white background " * 50)[:MAX_PROMPT_CHARS]
    checked = Txt2ImgRequest(model="shapes", prompt=typed, styles=["long"], width=64, height=64).validated(
        studio.limits("shapes"))
    assert len(checked.prompt) > MAX_PROMPT_CHARS and checked.prompt.startswith(typed.strip())
    with pytest.raises(ValidationError, match=f"prompt: {MAX_PROMPT_CHARS + 1} characters; at most {MAX_PROMPT_CHARS}"):
        Txt2ImgRequest(model="shapes", prompt=typed + "x", styles=["long"], width=64, height=64).validated(
            studio.limits("shapes"))


def shipped() -> tuple:
    return tuple(style.text for style in read_file(Path(__file__).parent.parent / "assets/shapes-model/styles.json"))


def test_a_style_that_sets_another_background_than_the_prompt_is_said():
    """Both reach the model, which draws one of them: the person is told, and chooses."""
    [said] = disagreements("a blue square on a White background", ("night",), shipped())
    assert '"white background"' in said and '"night"' in said and '"black background"' in said
    [said] = disagreements("a red circle on a black background", ("bold", "overcast"), shipped())
    assert '"overcast"' in said and '"gray background"' in said
    assert disagreements("a red circle on a black background", ("night",), shipped()) == ()  # they agree
    assert disagreements("a red circle", ("night", "overcast"), shipped()) == ()  # the prompt leaves it to the style
    assert disagreements("a red circle on a gray background", (), shipped()) == ()
    [said] = disagreements("a white background", ("plain",), (("plain", "{prompt}", "white background"),))
    assert said.startswith('The style "plain" avoids a white background')


def test_the_disagreement_comes_back_with_the_run(tmp_path):
    """In the result's notices: the page's status line and the API's recipes carry them."""
    studio = make_studio(styles=StyleBook(tmp_path / "styles.json"))
    request = Txt2ImgRequest(model="shapes", prompt="a blue square on a white background", styles=["night"], seed=1,
                             steps=2, width=64, height=64)
    result = studio.submit(request).result()
    assert len(result.images) == 1 and any('"night"' in notice for notice in result.notices)
    plain = studio.submit(dataclasses.replace(request, styles=[])).result()
    assert not any("background" in notice for notice in plain.notices)
