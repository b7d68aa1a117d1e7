// The cnnlab page: send the dropped or picked image to the API, draw the top classes as bars and
// show the Grad-CAM overlay (classifiers), the mask overlay (segmentation models) or the boxes (detectors).
"use strict";

const $ = (id) => document.getElementById(id);
let model = null;

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

async function post(path, file) {
  const form = new FormData();
  form.append("file", file, file.name || "upload");
  const response = await fetch(path, { method: "POST", body: form });
  if (!response.ok) throw new Error(await errorText(response));
  return response;
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

async function handle(file) {
  if (!file) return;
  if (file.type && !file.type.startsWith("image/")) {
    setStatus(`"${file.name}" is not an image; pick a PNG, JPEG, BMP, GIF or WebP file.`, true);
    return;
  }
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

async function loadModel() {
  try {
    const response = await fetch("/model");
    if (!response.ok) throw new Error(await errorText(response));
    model = await response.json();
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

const drop = $("drop");
$("file").addEventListener("change", (event) => handle(event.target.files[0]));
drop.addEventListener("dragover", (event) => {
  event.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  handle(event.dataTransfer.files[0]);
});
drop.addEventListener("keydown", (event) => {
  if (event.key === "Enter" || event.key === " ") $("file").click();
});
loadModel();
