"""Content Credentials: every result is signed with what made it and what it came from, read back with the
real C2PA Reader; a changed pixel is caught; the key is private; a failure to sign loses nothing."""

from __future__ import annotations

import io
import json
import logging
import stat
import threading

import c2pa
import numpy as np
import pytest
from PIL import Image

from pipelines import InpaintRequest, MorphRequest, Txt2ImgRequest, VariationsRequest
from pipelines.front.credentials import CHANGED_WORDS, Credentials, Identity, describe, read
from pipelines.front.credentials.identity import KEY_FILE, make_chain
from pipelines.front.credentials.reading import NONE_WORDS
from pipelines.front.credentials.signing import COMPOSITE, TRAINED
from tests.conftest import TINY, make_studio, tiny_registry
from tests.helpers import changed_pixel

SHARED = {"model": TINY, "steps": 2}
SMALL = {**SHARED, "width": 64, "height": 64}


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return tmp_path_factory.mktemp("data") / "atelier" / "c2pa"


@pytest.fixture(scope="module")
def credentials(keys):
    return Credentials(Identity.local(keys))


@pytest.fixture(scope="module")
def signing(tiny_model_dir, tmp_path_factory, credentials):
    """A studio that keeps its results in an outputs folder and signs them."""
    studio = make_studio(tiny_registry(tiny_model_dir), outputs=str(tmp_path_factory.mktemp("outputs")),
                         credentials=credentials)
    yield studio
    studio.close()


@pytest.fixture(scope="module")
def made(signing):
    return signing.submit(Txt2ImgRequest(**SMALL, prompt="a red circle", seed=7)).result()


def store(data: bytes, mime: str = "image/png") -> tuple[dict, list[str]]:
    """The manifest store as the C2PA Reader gives it, and its validation failure codes."""
    with c2pa.Reader(mime, io.BytesIO(data)) as reader:
        found = json.loads(reader.json())
    return found, [s["code"] for s in found.get("validation_status") or []]


def active(found: dict) -> dict:
    return found["manifests"][found["active_manifest"]]


def actions(found: dict) -> list[dict]:
    return [a for assertion in active(found)["assertions"] if assertion["label"].startswith("c2pa.actions")
            for a in assertion["data"]["actions"]]


def saved(studio, result, index: int = 0) -> bytes:
    """The file the outputs folder keeps of a result's image."""
    return studio.library().png(None, result.recipes[index].image_id)


def test_a_text_to_image_result_validates_as_ai_made(signing, made):
    data = saved(signing, made)
    assert data == made.pngs[0]  # the surfaces hand out exactly the file that was kept
    found, failures = store(data)
    assert failures == ["signingCredential.untrusted"]  # everything holds but trust in a key made here
    [created] = actions(found)
    assert created["action"] == "c2pa.created" and created["digitalSourceType"] == TRAINED
    assert created["softwareAgent"]["name"] == "Atelier" and created["parameters"]["model"] == TINY
    assert active(found).get("ingredients", []) == []


def test_the_recipe_and_the_pixels_survive_signing(signing, made):
    picture = Image.open(io.BytesIO(saved(signing, made)))
    assert picture.info["parameters"] == made.recipes[0].a1111_parameters()
    assert json.loads(picture.info["atelier"]) == made.recipes[0].to_dict()
    assert np.array_equal(np.asarray(picture.convert("RGB")), np.asarray(made.images[0].convert("RGB")))


def test_a_variation_names_its_parent_as_ingredient(signing, made):
    parent = made.recipes[0].image_id
    result = signing.submit(VariationsRequest(**SHARED, image=made.images[0], parent=parent, seed=3)).result()
    found, failures = store(saved(signing, result))
    assert failures == ["signingCredential.untrusted"]
    [ingredient] = active(found)["ingredients"]
    assert ingredient["relationship"] == "parentOf" and ingredient["title"] == f"atelier-{parent}.png"
    # The ingredient is the parent's own signed file: its credentials are the next step of the lineage.
    assert found["manifests"][ingredient["active_manifest"]]["title"].endswith(f"{parent}.png")
    assert [a["action"] for a in actions(found)] == ["c2pa.opened", "c2pa.edited"]
    words = describe(read(saved(signing, result)), in_library={parent})
    assert any(line.startswith(f"Edited from atelier-{parent}.png") and "in your Library" in line for line in words)


def test_an_inpaint_is_an_edit_with_its_mask_as_input(signing):
    image = Image.new("RGB", (64, 64), (30, 90, 200))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 40, 40))
    result = signing.submit(InpaintRequest(**SHARED, prompt="a red circle",
                                           image=image, mask=mask, seed=2)).result()
    found, failures = store(result.pngs[0])
    assert failures == ["signingCredential.untrusted"]
    edited = actions(found)[-1]
    assert edited["action"] == "c2pa.edited" and edited["digitalSourceType"] == COMPOSITE
    relationships = {i["title"]: i["relationship"] for i in active(found)["ingredients"]}
    assert relationships == {"the picture given as image": "parentOf", "the picture given as mask": "inputTo"}


def test_a_changed_pixel_is_detected(signing, made):
    tampered = changed_pixel(made.pngs[0])
    assert not np.array_equal(np.asarray(Image.open(io.BytesIO(tampered))), np.asarray(made.images[0]))
    _, failures = store(tampered)
    assert "assertion.dataHash.mismatch" in failures
    seen = read(tampered)
    assert seen["changed"] and not seen["valid"]
    assert describe(seen)[0] == CHANGED_WORDS == "The image was changed after it was signed: its credentials no longer match it."
    assert not read(made.pngs[0])["changed"]


def test_the_key_is_private_kept_and_outside_the_outputs(signing, keys, credentials):
    key = keys / KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys.stat().st_mode) & 0o077 == 0
    assert signing.libraries.persistent and not any(signing.library().file(None, r["image_id"]).parent == keys
                                                    for r in signing.library().search(None))
    again = Identity.local(keys)  # the next start signs with the same key, not a new one
    assert again.key == credentials.identity.key and again.chain == credentials.identity.chain
    outputs = signing.library().file(None, signing.library().search(None)[0]["image_id"]).parents[1]
    assert not list(outputs.rglob("*.key")) and not list(outputs.rglob("*.pem"))


def test_a_trust_anchor_makes_the_signer_trusted(made, credentials):
    issuer = credentials.identity.chain.split(b"-----END CERTIFICATE-----\n", 1)[1]
    trusting = Credentials(credentials.identity, trust=issuer)
    seen = trusting.read(made.pngs[0])
    assert seen["valid"] and seen["trusted"] and seen["problems"] == []
    assert describe(seen)[0].startswith("Signed by “Atelier local signer")
    assert not credentials.read(made.pngs[0])["trusted"]


def test_signing_runs_in_the_thread_that_asks_for_the_result(tiny_model_dir, credentials):
    signers: list[str] = []

    class Watched(Credentials):
        def sign(self, *args, **kwargs):
            signers.append(threading.current_thread().name)
            return super().sign(*args, **kwargs)

    studio = make_studio(tiny_registry(tiny_model_dir), credentials=Watched(credentials.identity))
    try:
        job = studio.submit(Txt2ImgRequest(**SMALL, prompt="x", seed=1))
        result = job.result()
        assert signers == [threading.current_thread().name]  # not "atelier-accelerator-…": the next job may run
        assert read(result.pngs[0])["valid"]
    finally:
        studio.close()


def test_a_failure_to_sign_keeps_the_image_unsigned_logged_once_and_said(tiny_model_dir, tmp_path, caplog):
    _, key = make_chain("signer")
    broken = Credentials(Identity(b"not a certificate", key, "own"))  # every signature fails
    studio = make_studio(tiny_registry(tiny_model_dir), outputs=str(tmp_path), credentials=broken)
    try:
        with caplog.at_level(logging.WARNING, logger="pipelines.front.credentials.signing"):
            results = [studio.submit(Txt2ImgRequest(**SMALL, prompt="x", seed=s)).result() for s in (1, 2)]
        for result in results:
            [notice] = [n for n in result.notices if "Content Credentials" in n]
            assert notice.startswith("Saved without Content Credentials: signing failed")
            kept = studio.library().png(None, result.recipes[0].image_id)
            assert kept == result.pngs[0] and not read(kept)["present"]
            assert Image.open(io.BytesIO(kept)).info["parameters"] == result.recipes[0].a1111_parameters()
        assert len([r for r in caplog.records if "could not sign" in r.getMessage()]) == 1
    finally:
        studio.close()


def test_no_credentials_saves_plain_files(tiny_studio):
    result = tiny_studio.submit(Txt2ImgRequest(**SMALL, prompt="x", seed=1)).result()
    assert describe(read(result.pngs[0])) == [NONE_WORDS]
    assert result.notices == ()


def test_a_morphs_animations_are_signed(signing):
    result = signing.submit(MorphRequest(**SMALL, prompt="a red circle", prompt_b="a blue square", num_frames=2,
                                         seed=4)).result()
    for kind, mime in (("gif", "image/gif"), ("mp4", "video/mp4")):
        with open(result.files[kind], "rb") as f:
            data = f.read()
        found, failures = store(data, mime)
        assert failures == ["signingCredential.untrusted"], kind
        assert actions(found)[0]["digitalSourceType"] == TRAINED


def test_another_makers_jpeg_is_read_and_a_plain_one_says_it_has_none(credentials, made):
    picture = io.BytesIO()
    made.images[0].convert("RGB").save(picture, format="JPEG")
    assert describe(read(picture.getvalue())) == [NONE_WORDS]
    signed = credentials.sign(picture.getvalue(), "image/jpeg", made.recipes[0])
    seen = read(signed)
    assert seen["valid"] and seen["ai_generated"] and seen["model"] == TINY
    assert read(b"not an image") == {"present": False, "error": "not a PNG, JPEG, GIF, WebP or MP4 file"}


def test_keys_and_trust_follow_the_settings(tmp_path, monkeypatch, made):
    from app import signing_credentials
    from settings import load_settings

    def chosen(*flags, **environ):
        return signing_credentials(load_settings(list(flags), environ=environ)[0])

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert chosen().identity.kind == "local" and (tmp_path / "data" / "atelier" / "c2pa" / KEY_FILE).is_file()
    assert chosen("--public-demo").identity.kind == "demo"  # a key of this process: nothing written for it
    assert chosen("--no-credentials") is None and chosen(ATELIER_CREDENTIALS="false") is None

    chain, key = make_chain("Studio Nord")
    (tmp_path / "chain.pem").write_bytes(chain)
    (tmp_path / "key.pem").write_bytes(key)
    (tmp_path / "root.pem").write_bytes(chain.split(b"-----END CERTIFICATE-----\n", 1)[1])
    own = chosen(ATELIER_C2PA_CERT=str(tmp_path / "chain.pem"), ATELIER_C2PA_KEY=str(tmp_path / "key.pem"),
                 ATELIER_C2PA_TRUST=str(tmp_path / "root.pem"))
    assert own.identity.kind == "own" and own.identity.name == "Studio Nord"
    seen = own.read(own.sign(made.pngs[0], "image/png", made.recipes[0]))
    assert seen["trusted"] and seen["signer"] == "Studio Nord"

    (tmp_path / "other.pem").write_bytes(make_chain("someone else")[1])
    with pytest.raises(SystemExit, match="--c2pa-key: .*other.pem is not the key of the first certificate"):
        chosen("--c2pa-cert", str(tmp_path / "chain.pem"), "--c2pa-key", str(tmp_path / "other.pem"))
    with pytest.raises(SystemExit, match="--c2pa-cert and --c2pa-key go together"):
        chosen("--c2pa-cert", str(tmp_path / "chain.pem"))
    with pytest.raises(SystemExit, match="--c2pa-trust: .*missing.pem is not a readable PEM file"):
        chosen("--c2pa-trust", str(tmp_path / "missing.pem"))
