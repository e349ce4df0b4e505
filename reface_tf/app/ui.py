"""The gradio page: one tab per kind of export found, an "About" tab listing every export and what is missing.

Each handler is a thin wrapper over :mod:`reface_tf.app.actions` (gradio runs them in its thread pool, off the
UI thread). A :class:`RefaceError` becomes one line in the page (``gr.Error``); anything else is logged with its
traceback on the server and shown as one line too. Uploads arrive through :class:`TransientFile`: the handler
decodes the file into memory and deletes it (and its folder) before it returns, so no upload outlives its
request. The page loads no fonts, scripts or analytics from the internet.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gradio as gr
import numpy as np
from gradio.data_classes import FileData
from gradio.utils import NamedString

from reface_tf.app import actions, labelmaps
from reface_tf.app.cards import RESPONSIBLE_USE, SYNTHETIC_NOTE, model_card
from reface_tf.app.catalog import AGE, FACES, OUTCOME, SEGMAP, SKETCH, TAB_TITLES, ExportEntry, by_tab, missing_tabs_help
from reface_tf.app.models import ModelStore
from reface_tf.data.images import IMAGE_SUFFIXES
from reface_tf.errors import DataError, RefaceError
from reface_tf.serve.predict import NoFaceError

log = logging.getLogger(__name__)

CANVAS = 256  # on-screen pixels of the drawing canvases
NO_FACE_HINT = "upload a photo with one face seen from the front, at least 100 pixels wide"


class TransientFile(gr.File):
    """``gr.File`` that hands the handler the uploaded file's own path (gradio's File also leaves an empty
    temporary file in its cache per request); the handler deletes the upload (:func:`forget_upload`)."""

    is_template = True  # the browser side is gr.File's

    def _process_single_file(self, f: FileData) -> NamedString:
        return NamedString(f.path)


def forget_upload(path: str | None, upload_root: Path | None) -> None:
    """Delete an uploaded file and the per-upload folder gradio made for it when that is left empty (only a
    folder directly inside ``upload_root``)."""
    if not path:
        return
    path = Path(path)
    try:
        path.unlink(missing_ok=True)
        if upload_root is not None and path.parent.resolve().parent == upload_root.resolve() and not any(path.parent.iterdir()):
            path.parent.rmdir()
    except OSError as err:
        log.warning("could not delete the upload %s (%s)", path, err)


def one_line(fn: Callable) -> Callable:
    """Run a handler; show a RefaceError as its line, anything else as one line (traceback in the server log)."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except RefaceError as err:
            raise gr.Error(str(err), print_exception=False) from None
        except Exception as err:  # noqa: BLE001 - the page gets one line, the log the traceback
            log.exception("handler %s failed", fn.__name__)
            first = (str(err).strip().splitlines() or [""])[0][:200]
            raise gr.Error(f"internal error ({type(err).__name__}: {first}); the app's log has the details",
                           print_exception=False) from None

    return run


def clear() -> None:
    """The new value of an upload box once its file has been read and deleted: empty."""
    return None


def took(start: float, extra: str = "") -> str:
    return f"Took **{time.perf_counter() - start:.2f} s**{extra}."


def swatches(names, palette) -> str:
    """The class legend of the SPADE canvas: each class name on its brush colour."""
    spans = []
    for i, (name, rgb) in enumerate(zip(names, np.asarray(palette, int))):
        light = rgb @ np.array([0.299, 0.587, 0.114]) > 140
        spans.append(f'<span style="background:rgb({rgb[0]},{rgb[1]},{rgb[2]});color:{"#000" if light else "#fff"};'
                     f'padding:2px 6px;margin:2px;border-radius:4px;display:inline-block;font-size:13px">{i} {name}</span>')
    return '<div class="reface-legend">' + "".join(spans) + "</div>"


def hex_colour(rgb) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(v) for v in rgb))


@dataclass
class Held:
    """An upload decoded into the session's memory (its file already deleted), or why it could not be."""

    rgb: np.ndarray | None = None
    name: str = ""
    error: str = ""


class Page:
    """Builds the Blocks; holds the store of models and the folder uploads land in."""

    def __init__(self, entries: list[ExportEntry], store: ModelStore, upload_root: Path | None = None,
                 limits: actions.Limits = actions.Limits(), models_dir: str = "export",
                 delete_cache: tuple[int, int] | None = None):
        self.entries, self.store, self.upload_root, self.limits = entries, store, upload_root, limits
        self.delete_cache = delete_cache  # (every s, older than s): how long shown pictures stay in the cache
        self.models_dir = models_dir
        self.tabs = by_tab(entries)

    # ---------------------------------------------------------------------------------------- helpers

    def take_photo(self, path: str | None) -> tuple[np.ndarray, str]:
        """Decode an upload into memory and delete it; (rgb, the name it was uploaded as)."""
        if not path:
            raise DataError("no file uploaded; choose an image file first")
        name = Path(path).name
        try:
            return actions.decode_upload(path, name, self.limits), name
        finally:
            forget_upload(path, self.upload_root)

    def hold(self, path: str | None) -> Held:
        """:meth:`take_photo` that never raises, so the events chained after it (emptying the upload box) run
        even for a bad file: gradio stops a chain at an error. The error is raised by :meth:`held_photo`."""
        try:
            return Held(*self.take_photo(path))
        except RefaceError as err:
            return Held(error=str(err))

    @staticmethod
    def held_photo(held: Held | None) -> tuple[np.ndarray, str]:
        if held is None:
            raise DataError("upload a photo first")
        if held.error:
            raise DataError(held.error)
        return held.rgb, held.name

    @staticmethod
    def _no_face(name: str, err: NoFaceError) -> DataError:
        return DataError(f"{name}: {err}; {NO_FACE_HINT}")

    def _picker(self, tab: str):
        entries = self.tabs[tab]
        names = [e.name for e in entries]
        picker = gr.Dropdown(names, value=names[0], label="Model", interactive=len(names) > 1)
        card = gr.Markdown(model_card(entries[0]))
        by_name = {e.name: e for e in entries}
        picker.change(lambda n: model_card(by_name[n]), picker, card)
        return picker

    # ---------------------------------------------------------------------------------------- tabs

    def outcome_tab(self) -> None:
        picker = self._picker(OUTCOME)
        gr.Markdown(RESPONSIBLE_USE[OUTCOME])
        with gr.Row():
            with gr.Column():
                upload = TransientFile(label="Photo (JPEG, PNG, WebP, ...)", file_types=list(IMAGE_SUFFIXES),
                                       elem_id="outcome-upload")
                run = gr.Button("Simulate again", elem_id="outcome-run")
                status = gr.Markdown(elem_id="outcome-status")
            with gr.Column(scale=2):
                slider = gr.ImageSlider(label="Before | after (drag the handle)", type="numpy", format="png",
                                        elem_id="outcome-slider")
                pair = gr.Image(label="Before | after, to download", type="numpy", format="png", interactive=False,
                                buttons=["download"], elem_id="outcome-pair")
        photo = gr.State(None)

        @one_line
        def simulate(model_name, held):
            rgb, name = self.held_photo(held)
            start = time.perf_counter()
            model = self.store.get(model_name, OUTCOME)
            try:
                result = actions.simulate_outcome(rgb, model, self.store.landmarker)
            except NoFaceError as err:
                raise self._no_face(name, err) from None
            extra = f" ({result.faces} faces: the largest was simulated)" if result.faces > 1 else ""
            return (result.before, result.after), result.pair, took(start, extra) + f" {name}, {rgb.shape[1]}×{rgb.shape[0]}"

        # the box is emptied whatever the file was: its file is gone from disk
        upload.upload(self.hold, upload, photo).then(clear, None, upload).then(simulate, [picker, photo], [slider, pair, status])
        run.click(simulate, [picker, photo], [slider, pair, status])

    def sketch_tab(self) -> None:
        picker = self._picker(SKETCH)
        with gr.Row():
            with gr.Column():
                canvas = gr.ImageEditor(label="Draw a face (black pencil, grey shading)", sources=(), type="numpy",
                                        image_mode="RGB", format="png", layers=False, transforms=(),
                                        canvas_size=(CANVAS, CANVAS), elem_id="sketch-canvas",
                                        brush=gr.Brush(colors=["#000000", "#808080"], color_mode="fixed", default_size=3))
                draw = gr.Button("Face from the drawing", variant="primary", elem_id="sketch-draw")
            with gr.Column():
                kind = gr.Radio(["a sketch", "a photo (make its sketch)"], value="a sketch", label="The upload is")
                upload = TransientFile(label="Or upload a sketch or a photo", file_types=list(IMAGE_SUFFIXES),
                                       elem_id="sketch-upload")
            with gr.Column():
                used = gr.Image(label="Sketch used", type="numpy", format="png", interactive=False)
                face = gr.Image(label="Face", type="numpy", format="png", interactive=False, elem_id="sketch-face")
                status = gr.Markdown()

        @one_line
        def from_canvas(model_name, value):
            start = time.perf_counter()
            composite = (value or {}).get("composite")
            if composite is None:
                raise DataError("the canvas is empty; draw a face first")
            sketch = actions.canvas_sketch(composite)
            model = self.store.get(model_name, SKETCH)
            return sketch, actions.face_from_sketch(sketch, model), took(start)

        @one_line
        def from_upload(model_name, what, held):
            rgb, name = self.held_photo(held)
            start = time.perf_counter()
            model = self.store.get(model_name, SKETCH)
            if what.startswith("a photo"):
                try:
                    rgb = actions.sketch_of_photo(rgb, model, self.store.landmarker)
                except NoFaceError as err:
                    raise self._no_face(name, err) from None
            return rgb, actions.face_from_sketch(rgb, model), took(start)

        draw.click(from_canvas, [picker, canvas], [used, face, status])
        held = gr.State(None)
        upload.upload(self.hold, upload, held).then(clear, None, upload).then(from_upload, [picker, kind, held], [used, face, status])

    def segmap_tab(self) -> None:
        picker = self._picker(SEGMAP)
        first = self.store.get(self.tabs[SEGMAP][0].name, SEGMAP)
        names, palette, size = first.class_names, first.palette, first.size
        scale = max(1, CANVAS // size)
        stems = labelmaps.list_maps(first.maps_dir)
        classes = [f"{i} {n}" for i, n in enumerate(names)]
        ids = gr.State(labelmaps.blank_map(size))
        gr.Markdown("Start from a map, paint with one brush per class (the colours below), then press *Apply "
                    "strokes*; move or swap a part; change the style seed. The face follows every change.")
        with gr.Row():
            start_from = gr.Radio(["blank", "dataset map", "photo's landmark map"], value="dataset map" if stems else "blank",
                                  label="Start from", elem_id="segmap-start-from")
            dataset_map = gr.Dropdown(stems, value=stems[0] if stems else None, label="Dataset map",
                                      info=f"{len(stems)} maps of the training data" if stems else
                                      "the training data's labels/ folder is not on this machine")
            photo = TransientFile(label="Photo (for its landmark map)", file_types=list(IMAGE_SUFFIXES),
                                  elem_id="segmap-photo")
            start_btn = gr.Button("Start from this", elem_id="segmap-start")
        with gr.Row():
            with gr.Column(scale=2):
                canvas = gr.ImageEditor(label="Label map", sources=(), type="numpy", image_mode="RGB", format="png",
                                        layers=False, transforms=(), canvas_size=(size * scale, size * scale),
                                        elem_id="segmap-canvas",
                                        brush=gr.Brush(colors=[hex_colour(c) for c in palette], color_mode="fixed",
                                                       default_size=max(2, scale * 2)))
                gr.HTML(swatches(names, palette))
                apply_btn = gr.Button("Apply strokes", variant="primary", elem_id="segmap-apply")
            with gr.Column():
                face = gr.Image(label="Face", type="numpy", format="png", interactive=False, elem_id="segmap-face")
                seed = gr.Number(0, precision=0, label="Style seed", minimum=0, elem_id="segmap-seed")
                status = gr.Markdown(elem_id="segmap-status")
        with gr.Row():
            part = gr.Dropdown(classes, value=classes[min(2, len(classes) - 1)], label="Part (class)")
            dx = gr.Number(0, precision=0, label="Move right by (map pixels)")
            dy = gr.Number(0, precision=0, label="Move down by (map pixels)")
            move_btn = gr.Button("Move part")
            other = gr.Dropdown(stems, value=stems[-1] if stems else None, label="Replace it with the part of map")
            replace_btn = gr.Button("Replace part")

        def shown(model, labels):
            return {"background": labelmaps.picture(labels, model.palette, scale), "layers": [], "composite": None}

        def render(model_name, labels, seed_value, start, what: str):
            model = self.store.get(model_name, SEGMAP)
            image = actions.for_display(model.render(labels, int(seed_value or 0)))
            present = ", ".join(names[c] for c in np.unique(labels) if c < len(names))
            return labels, shown(model, labels), image, took(start, f" · {what} · classes in the map: {present}")

        @one_line
        def start_map(model_name, how, stem, held, seed_value):
            start = time.perf_counter()
            model = self.store.get(model_name, SEGMAP)
            if how == "blank":
                return render(model_name, labelmaps.blank_map(model.size), seed_value, start, "blank map")
            if how == "dataset map":
                if not stem or model.maps_dir is None:
                    raise DataError("no dataset map to start from: the training data's labels/ folder is not on this machine")
                labels = labelmaps.load_map(model.maps_dir, stem, model.size, len(model.class_names))
                return render(model_name, labels, seed_value, start, f"dataset map {stem}")
            rgb, name = self.held_photo(held)
            try:
                labels = labelmaps.photo_map(rgb, self.store.landmarker, model.size, model.alignment)
            except NoFaceError as err:
                raise self._no_face(name, err) from None
            return render(model_name, labels, seed_value, start, f"landmark map of {name}")

        @one_line
        def apply(model_name, labels, value, seed_value):
            start = time.perf_counter()
            model = self.store.get(model_name, SEGMAP)
            composite = (value or {}).get("composite")
            if composite is None:
                raise DataError("nothing painted yet; pick a colour and paint on the map first")
            labels, changed = labelmaps.apply_strokes(labels, composite, model.palette)
            return render(model_name, labels, seed_value, start, f"{changed} map pixels painted")

        @one_line
        def move(model_name, labels, which, right, down, seed_value):
            start = time.perf_counter()
            cls = int(which.split()[0])
            labels = labelmaps.move_class(labels, cls, int(right or 0), int(down or 0))
            return render(model_name, labels, seed_value, start, f"moved {names[cls]} by ({int(right or 0)}, {int(down or 0)})")

        @one_line
        def replace(model_name, labels, which, stem, seed_value):
            start = time.perf_counter()
            model = self.store.get(model_name, SEGMAP)
            if not stem or model.maps_dir is None:
                raise DataError("no dataset map to take the part from: the training data's labels/ folder is not here")
            cls = int(which.split()[0])
            source = labelmaps.load_map(model.maps_dir, stem, model.size, len(model.class_names))
            labels = labelmaps.replace_part(labels, source, cls)
            return render(model_name, labels, seed_value, start, f"{names[cls]} from map {stem}")

        @one_line
        def reseed(model_name, labels, seed_value):
            return render(model_name, labels, seed_value, time.perf_counter(), f"seed {int(seed_value or 0)}")

        outputs = [ids, canvas, face, status]
        held = gr.State(None)  # the photo, decoded and deleted as soon as it is uploaded
        photo.upload(self.hold, photo, held).then(clear, None, photo).then(
            lambda: gr.update(value="photo's landmark map"), None, start_from)
        start_btn.click(start_map, [picker, start_from, dataset_map, held, seed], outputs)
        apply_btn.click(apply, [picker, ids, canvas, seed], outputs)
        move_btn.click(move, [picker, ids, part, dx, dy, seed], outputs)
        replace_btn.click(replace, [picker, ids, part, other, seed], outputs)
        seed.submit(reseed, [picker, ids, seed], outputs)
        seed.change(reseed, [picker, ids, seed], outputs)

    def faces_tab(self) -> None:
        picker = self._picker(FACES)
        first = self.store.get(self.tabs[FACES][0].name, FACES)

        def class_choices(model):
            return [f"{i} {n}" for i, n in enumerate(model.class_names)]

        with gr.Row():
            with gr.Column():
                seed = gr.Number(0, precision=0, minimum=0, label="Seed", elem_id="faces-seed")
                cls = gr.Dropdown(class_choices(first), value=(class_choices(first) or [None])[0], label="Class",
                                  visible=bool(first.class_names))
                truncation = gr.Slider(0.0, 1.0, value=1.0, step=0.05, label="Truncation ψ (toward the average face)",
                                       visible=first.truncates)
                go = gr.Button("Generate", variant="primary", elem_id="faces-generate")
            with gr.Column():
                face = gr.Image(label="Face", type="numpy", format="png", interactive=False, elem_id="faces-face")
                status = gr.Markdown()
        with gr.Row():
            seed_a = gr.Number(0, precision=0, minimum=0, label="From seed")
            seed_b = gr.Number(1, precision=0, minimum=0, label="To seed")
            steps = gr.Slider(2, 12, value=8, step=1, label="Faces in the strip")
            between = gr.Button("Interpolate", elem_id="faces-interpolate")
        strip = gr.Image(label="Interpolation", type="numpy", format="png", interactive=False, elem_id="faces-strip")

        def class_index(value) -> int:
            return int(value.split()[0]) if value else 0

        @one_line
        def generate(model_name, seed_value, which, psi):
            start = time.perf_counter()
            model = self.store.get(model_name, FACES)
            image = model.faces([int(seed_value or 0)], class_index(which), float(psi))[0]
            return actions.for_display(image), took(start)

        @one_line
        def interpolate(model_name, a, b, n, which, psi):
            start = time.perf_counter()
            model = self.store.get(model_name, FACES)
            faces = model.interpolate(int(a or 0), int(b or 0), int(n), class_index(which), float(psi))
            return actions.for_display(actions.tile_row(faces), min_side=96), took(start)

        @one_line
        def switch(model_name):
            model = self.store.get(model_name, FACES)
            choices = class_choices(model)
            return (gr.update(choices=choices, value=(choices or [None])[0], visible=bool(choices)),
                    gr.update(visible=model.truncates))

        picker.change(switch, picker, [cls, truncation])
        go.click(generate, [picker, seed, cls, truncation], [face, status])
        between.click(interpolate, [picker, seed_a, seed_b, steps, cls, truncation], [strip, status])

    def age_tab(self) -> None:
        picker = self._picker(AGE)
        first = self.store.get(self.tabs[AGE][0].name, AGE)
        gr.Markdown(RESPONSIBLE_USE[AGE])
        targets = ["all", *first.editor.class_names]
        with gr.Row():
            with gr.Column():
                target = gr.Dropdown(targets, value="all", label="Target age group", elem_id="age-target")
                upload = TransientFile(label="Photo", file_types=list(IMAGE_SUFFIXES), elem_id="age-upload")
                run = gr.Button("Edit again", elem_id="age-run")
                status = gr.Markdown()
            with gr.Column(scale=3):
                strip = gr.Image(label="The photo and its edits", type="numpy", format="png", interactive=False,
                                 buttons=["download"], elem_id="age-strip")
        photo = gr.State(None)

        @one_line
        def edit(model_name, which, held):
            from reface_tf.serve.age_editor import target_classes

            rgb, name = self.held_photo(held)
            start = time.perf_counter()
            model = self.store.get(model_name, AGE)
            chosen = target_classes(which or "all", model.editor.class_names)
            try:
                image, faces = actions.age_edits(rgb, model, chosen, self.store.landmarker)
            except NoFaceError as err:
                raise self._no_face(name, err) from None
            extra = f" ({faces} faces: the largest was edited)" if faces > 1 else ""
            return image, took(start, extra) + f" {len(chosen)} edit(s) of {name}"

        @one_line
        def switch(model_name):
            model = self.store.get(model_name, AGE)
            return gr.update(choices=["all", *model.editor.class_names], value="all")

        picker.change(switch, picker, target)
        upload.upload(self.hold, upload, photo).then(clear, None, upload).then(edit, [picker, target, photo], [strip, status])
        run.click(edit, [picker, target, photo], [strip, status])

    def about_tab(self) -> None:
        lines = [f"Models folder: `{self.models_dir}`", "", SYNTHETIC_NOTE, "", "**Exports found**", ""]
        lines += [f"- `{e.name}` ({e.task}) → {TAB_TITLES[e.tab]}" if e.tab else f"- `{e.name}`: not shown ({e.reason})"
                  for e in self.entries] or ["- none"]
        missing = missing_tabs_help(self.entries)
        if missing:
            lines += ["", "**Tabs without a model** (the commands that make one, from the repository root)", ""]
            lines += [f"- {line}" for line in missing]
        gr.Markdown("\n".join(lines), elem_id="about")

    # ---------------------------------------------------------------------------------------- page

    def build(self) -> gr.Blocks:
        builders = {OUTCOME: self.outcome_tab, SKETCH: self.sketch_tab, SEGMAP: self.segmap_tab,
                    FACES: self.faces_tab, AGE: self.age_tab}
        with gr.Blocks(title="ReFace-TF", analytics_enabled=False, delete_cache=self.delete_cache) as page:
            gr.Markdown("# ReFace-TF\nFace generation and translation with the exported models of this machine. "
                        + SYNTHETIC_NOTE)
            with gr.Tabs():
                for tab in self.tabs:
                    with gr.Tab(TAB_TITLES[tab], id=tab):
                        builders[tab]()
                with gr.Tab("About", id="about"):
                    self.about_tab()
        return page


def offline_theme() -> gr.themes.Base:
    """The default look with system fonts only: the stock themes fetch Google Fonts."""
    return gr.themes.Default(font=[gr.themes.Font("system-ui"), gr.themes.Font("Segoe UI"), gr.themes.Font("sans-serif")],
                             font_mono=[gr.themes.Font("ui-monospace"), gr.themes.Font("monospace")])


def build_page(entries: list[ExportEntry], store: ModelStore, upload_root: Path | None, limits: actions.Limits,
               models_dir: str, delete_cache: tuple[int, int] | None = None) -> Any:
    return Page(entries, store, upload_root, limits, models_dir, delete_cache).build()
