// The cnnlab page: send the dropped or picked image to the API, draw the top classes as bars and
// show the Grad-CAM overlay (classifiers), the mask overlay (segmentation models) or the boxes (detectors);
// for an embedder, compare two photos with /verify and show the verdict, the distance against the threshold
// and each photo's face; for a sequence model, send a file (a recording, a series file, a clip or a volume)
// and show its top classes and where the model looked over time.
"use strict";

const $ = (id) => document.getElementById(id);
let model = null;
const photos = { first: null, second: null }; // the embedder's two photos (File objects)

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

async function errorText(response) {
  try {
    const body = await response.json();
    return `${response.status}: ${body.detail ?? JSON.stringify(body)}`;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

async function send(path, form) {
  const response = await fetch(path, { method: "POST", body: form });
  if (!response.ok) throw new Error(await errorText(response));
  return response;
}

async function post(path, file) {
  const form = new FormData();
  form.append("file", file, file.name || "upload");
  return send(path, form);
}

function isImage(file) {
  if (!file.type || file.type.startsWith("image/")) return true;
  setStatus(`"${file.name}" is not an image; pick a PNG, JPEG, BMP, GIF or WebP file.`, true);
  return false;
}

function showBars(top) {
  const list = $("top-classes");
  list.replaceChildren();
  for (const item of top) {
    const percent = (100 * item.probability).toFixed(1);
    const li = document.createElement("li");
    li.dataset.label = item.label;
    const label = document.createElement("div");
    label.className = "label";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = item.label; // textContent: class names are never parsed as HTML
    const value = document.createElement("span");
    value.textContent = `${percent}%`;
    label.append(name, value);
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.setAttribute("role", "meter");
    bar.setAttribute("aria-valuenow", percent);
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "100");
    bar.setAttribute("aria-label", item.label);
    const fill = document.createElement("span");
    fill.style.width = `${percent}%`;
    bar.append(fill);
    li.append(label, bar);
    list.append(li);
  }
}

function showImage(element, blob) {
  if (element.src) URL.revokeObjectURL(element.src);
  element.src = URL.createObjectURL(blob);
  element.hidden = false;
}

async function handleFile(file) {
  const name = file.name.toLowerCase();
  if (!model.files.suffixes.some((suffix) => name.endsWith(suffix))) {
    setStatus(`"${file.name}" is not a file this model reads; pick a ${model.files.suffixes.join(" / ")} file.`, true);
    return;
  }
  $("overlay").hidden = true;
  $("overlay-note").textContent = "";
  setStatus("Working…");
  try {
    const result = await (await post("/predict", file)).json();
    showBars(result.top);
    $("results").hidden = false;
    const count = result.samples.length;
    const which = count > 1 ? ` for ${result.samples[0].name}, the first of ${count} samples in the file` : "";
    setStatus(`Predicted: ${result.top[0].label}${which} (${result.elapsed_ms} ms)`);
    const response = await post("/explain", file);
    showImage($("overlay"), await response.blob());
    const label = decodeURIComponent(response.headers.get("X-Class-Label") ?? "");
    $("overlay").alt = `Class activation over time for ${label}`;
    $("overlay-note").textContent = count > 1 ? "Each of the first samples with the map of its predicted class." : `Where the model looked for “${label}”.`;
  } catch (error) {
    setStatus(error.message, true);
  }
}

async function handle(file) {
  if (!file) return;
  if (model && model.task === "sequence") {
    await handleFile(file);
    return;
  }
  if (!isImage(file)) return;
  showImage($("preview"), file);
  $("overlay").hidden = true;
  $("overlay-note").textContent = "";
  setStatus("Working…");
  try {
    if (model && model.task === "segment") {
      $("results").hidden = false;
      $("top-classes").replaceChildren();
      const response = await post("/segment?view=overlay", file);
      showImage($("overlay"), await response.blob());
      setStatus("Segmented.");
      return;
    }
    if (model && model.task === "detect") {
      $("results").hidden = false;
      $("top-classes").replaceChildren();
      const response = await post("/detect?view=picture", file);
      showImage($("overlay"), await response.blob());
      setStatus(`Detected ${response.headers.get("X-Detections")} object(s) scoring 0.25 or more.`);
      return;
    }
    const result = await (await post("/predict", file)).json();
    showBars(result.top);
    $("results").hidden = false;
    setStatus(`Predicted: ${result.top[0].label} (${result.elapsed_ms} ms, ${result.runtime})`);
    if (model && !model.endpoints.explain) {
      $("overlay-note").textContent = "This server runs an .onnx file, which cannot explain; serve the checkpoint for Grad-CAM.";
      return;
    }
    const response = await post("/explain", file);
    showImage($("overlay"), await response.blob());
    const label = decodeURIComponent(response.headers.get("X-Class-Label") ?? "");
    $("overlay").alt = `Grad-CAM heatmap for ${label}`;
    $("overlay-note").textContent = `Where the model looked for “${label}”.`;
  } catch (error) {
    setStatus(error.message, true);
  }
}

function pickPhoto(slot, file) {
  if (!file || !isImage(file)) return;
  photos[slot] = file;
  showImage($(`preview-${slot}`), file);
  $(`box-${slot}`).hidden = true;
  $(`note-${slot}`).textContent = "";
  $("verdict").hidden = true;
  const ready = photos.first && photos.second;
  $("compare").disabled = !ready;
  setStatus(ready ? "Ready: press Compare." : `Now the ${photos.first ? "second" : "first"} photo.`);
}

function showFaceBox(slot, box) {
  const image = $(`preview-${slot}`);
  const frame = $(`box-${slot}`);
  frame.hidden = !box || !image.naturalWidth;
  if (frame.hidden) return;
  const [x1, y1, x2, y2] = box; // the photo's pixels: as percentages of the shown picture
  const w = image.naturalWidth;
  const h = image.naturalHeight;
  frame.style.left = `${(100 * Math.max(0, x1)) / w}%`;
  frame.style.top = `${(100 * Math.max(0, y1)) / h}%`;
  frame.style.width = `${(100 * (Math.min(w, x2) - Math.max(0, x1))) / w}%`;
  frame.style.height = `${(100 * (Math.min(h, y2) - Math.max(0, y1))) / h}%`;
}

function showVerdict(result) {
  const { distance, threshold, same } = result;
  $("verdict").hidden = false;
  $("verdict").classList.toggle("same", same);
  $("verdict").classList.toggle("different", !same);
  $("verdict-text").textContent = same ? "Same person" : "Different people";
  const top = Math.max(2 * threshold, 1.1 * distance) || 1; // the threshold mid-scale unless the distance is beyond
  $("distance-fill").style.width = `${Math.min(100, (100 * distance) / top)}%`;
  $("threshold-mark").style.left = `${Math.min(100, (100 * threshold) / top)}%`;
  const bar = $("distance-bar");
  bar.setAttribute("aria-valuenow", String(distance));
  bar.setAttribute("aria-valuemax", top.toFixed(4));
  const compare = same ? "at or below" : "above";
  $("verdict-detail").textContent = `Distance ${distance.toFixed(4)}, ${compare} the threshold ${threshold.toFixed(4)}.`;
  for (const slot of ["first", "second"]) {
    $(`note-${slot}`).textContent = result[slot].face; // textContent: server text is never parsed as HTML
    showFaceBox(slot, result[slot].box);
  }
  setStatus(`Compared in ${result.elapsed_ms} ms (faces: ${result.faces}).`);
}

async function compare() {
  if (!photos.first || !photos.second) return;
  const form = new FormData();
  for (const slot of ["first", "second"]) form.append(slot, photos[slot], photos[slot].name || slot);
  $("compare").disabled = true;
  $("verdict").hidden = true;
  setStatus("Comparing…");
  try {
    const response = await send(`/verify?faces=${encodeURIComponent($("faces").value)}`, form);
    showVerdict(await response.json());
  } catch (error) {
    setStatus(error.message, true);
  } finally {
    $("compare").disabled = false;
  }
}

function showEmbedder() {
  const [, c, h, w] = model.input.shape;
  const people = model.classes.length ? `, trained on ${model.classes.length} people` : "";
  const threshold = `same person at distance ≤ ${Number(model.threshold).toFixed(4)}`;
  $("model-info").textContent = `${model.name}: face verification (${threshold})${people}, input ${c}×${h}×${w}`;
  $("drop").hidden = true;
  $("results").hidden = true;
  $("verify").hidden = false;
  setStatus("Pick two photos, then press Compare.");
}

function showSequence() {
  const shape = model.input.shape.slice(1).join("×");
  const kinds = { audio: "recordings", series: "series", clip: "clips", volume: "volumes" };
  const kind = kinds[model.files.kind] ?? model.files.kind;
  $("model-info").textContent = `${model.name}: ${kind}, ${model.classes.length} classes, input ${shape}`;
  const suffixes = model.files.suffixes.join(" / ");
  $("drop-text").textContent = `Drop a ${suffixes} file here, or`;
  $("pick-label").textContent = "Pick a file…";
  $("file").accept = model.files.suffixes.join(",");
  $("overlay-title").textContent = "Where the model looked";
  $("results").classList.add("wide"); // the map over time is a wide picture
}

async function loadModel() {
  try {
    const response = await fetch("/model");
    if (!response.ok) throw new Error(await errorText(response));
    model = await response.json();
    if (model.task === "embed") {
      showEmbedder();
      return;
    }
    if (model.task === "sequence") {
      showSequence();
      return;
    }
    const [, c, h, w] = model.input.shape;
    const what = model.task === "classify" ? `${model.classes.length} classes` : `${model.task}, ${model.classes.length} classes`;
    $("model-info").textContent = `${model.name}: ${what}, input ${c}×${h}×${w}, runtime ${model.runtime}`;
    if (model.task === "segment") {
      $("classes-title").textContent = "Classes";
      $("overlay-title").textContent = "Mask overlay";
    }
    if (model.task === "detect") {
      $("classes-title").textContent = "Classes";
      $("overlay-title").textContent = "Boxes";
    }
  } catch (error) {
    $("model-info").textContent = `Cannot read /model: ${error.message}`;
  }
}

function dropZone(zone, input, onFile) {
  input.addEventListener("change", (event) => onFile(event.target.files[0]));
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    onFile(event.dataTransfer.files[0]);
  });
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") input.click();
  });
}

dropZone($("drop"), $("file"), handle);
for (const slot of ["first", "second"]) dropZone($(`drop-${slot}`), $(`file-${slot}`), (file) => pickPhoto(slot, file));
$("compare").addEventListener("click", compare);
loadModel();
