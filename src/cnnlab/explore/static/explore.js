// cnnlab explore: pick an image, click a layer to see its maps and arithmetic, click a unit in the maps to
// see its receptive field on the image and the arithmetic that made its value; Grad-CAM per class; the top-9
// patches of a unit when the server has a data folder. All text from the server goes in as textContent.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { model: null, image: null, layer: null, grid: null };

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

async function call(path, options = {}) {
  const response = await fetch(path, options);
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      detail = `${response.status}: ${body.detail ?? JSON.stringify(body)}`;
    } catch {}
    throw new Error(detail);
  }
  return response.json();
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function number(v, digits = 6) {
  if (v === null || v === undefined) return "–";
  const text = Number(v).toPrecision(digits); // trailing zeros after the point dropped: 1.50000 -> 1.5
  return text.includes(".") ? text.replace(/0+(e|$)/, "$1").replace(/\.(e|$)/, "$1") : text;
}
const grouped = (v) => (v === null || v === undefined ? "–" : Number(v).toLocaleString("en"));
const dims = (shape) => (shape ? shape.join("×") : "–");

async function loadModel() {
  try {
    const model = await call("/api/model");
    state.model = model;
    const [c, h, w] = model.input_size;
    $("model-info").textContent = `${model.name}: ${model.classes.length} classes, input ${c}×${h}×${w}, ${model.layers.length} layer calls`;
    $("model-note").textContent = model.note;
    $("model-note").classList.toggle("untrained", !model.trained);
    for (const name of model.samples) {
      const button = element("button", name);
      button.type = "button";
      button.addEventListener("click", () => pick(`/api/images/sample?name=${encodeURIComponent(name)}`));
      $("samples").append(button);
    }
    if (model.data) {
      $("data-label").hidden = false;
      $("data-pick").hidden = false;
      $("data-pick").append(element("option", `— ${model.data.images.length} images —`));
      for (const path of model.data.images) $("data-pick").append(element("option", path));
    }
    for (const [index, label] of model.classes.entries()) {
      const option = element("option", `${index}: ${label}`);
      option.value = String(index);
      $("cam-class").append(option);
    }
    listLayers(model.layers);
    setStatus("Upload an image or pick a built-in picture.");
  } catch (error) {
    $("model-info").textContent = `Cannot read /api/model: ${error.message}`;
  }
}

function listLayers(layers) {
  const list = $("layer-list");
  for (const layer of layers) {
    const button = element("button");
    button.type = "button";
    button.dataset.index = String(layer.index);
    button.classList.toggle("flat", !layer.maps);
    button.style.paddingLeft = `${0.3 + 0.8 * layer.depth}rem`;
    button.append(element("span", `${layer.label} · ${layer.type}`), element("span", dims(layer.output_shapes[0]), "shape"));
    button.addEventListener("click", () => showLayer(layer.index));
    const item = element("li");
    item.append(button);
    list.append(item);
  }
}

async function pick(path, options = { method: "POST" }) {
  setStatus("Running the model…");
  try {
    const seen = await call(path, options);
    state.image = seen.id;
    $("input").src = `/api/images/${seen.id}/input.png`;
    $("input-frame").hidden = false;
    $("field-box").hidden = true;
    $("image-notes").replaceChildren(...seen.notes.map((note) => element("li", note)));
    $("top-classes").replaceChildren(
      ...seen.top.map((item) => element("li", `${item.label}: ${(100 * item.probability).toFixed(1)}%`)),
    );
    setStatus(`${seen.origin}: all layers recorded in ${seen.elapsed_ms} ms. Click a layer.`);
    if (seen.top.length) {
      $("cam-class").value = String(seen.top[0].class);
      showCam();
    }
    const first = state.model.layers.find((layer) => layer.maps);
    await showLayer(state.layer ?? first.index);
  } catch (error) {
    setStatus(error.message, true);
  }
}

function arithmeticRows(layer) {
  const rows = [
    ["Output shape", [...layer.arithmetic.shape, `→ ${dims(layer.output_shapes[0])}`]],
    ["Parameters", [`${grouped(layer.params)} (summary)`, layer.arithmetic.params]],
    ["Multiply-adds", [`${grouped(layer.macs)} (summary)`, layer.arithmetic.macs]],
  ];
  const field = layer.receptive_field;
  const text = field
    ? `${field.map((axis) => axis[0]).join("×")} pixels; neighbouring units are ${field.map((axis) => axis[1]).join("×")} pixels apart`
    : "– (no spatial maps, or not a sliding window)";
  rows.push(["Receptive field", [text]]);
  return rows.map(([name, lines]) => {
    const row = element("tr");
    const cell = element("td");
    lines.forEach((line, i) => {
      if (i) cell.append(element("br"));
      cell.append(document.createTextNode(line));
    });
    row.append(element("th", name), cell);
    return row;
  });
}

async function showLayer(index) {
  if (!state.image) {
    setStatus("Pick an image first.", true);
    return;
  }
  state.layer = index;
  for (const button of document.querySelectorAll("#layer-list button")) {
    button.classList.toggle("selected", button.dataset.index === String(index));
  }
  setStatus("Loading the layer…");
  try {
    const view = await call(`/api/images/${state.image}/layers/${index}`);
    const layer = view.layer;
    $("layer-panel").hidden = false;
    $("layer-title").textContent = `${layer.label} (${layer.type})`;
    $("arithmetic").tBodies[0].replaceChildren(...arithmeticRows(layer));
    $("grid-mark").hidden = true;
    $("unit-panel").hidden = true;
    state.grid = view.grid ?? null;
    $("grid-frame").hidden = !view.grid;
    $("vector").hidden = !view.vector;
    if (view.grid) {
      const g = view.grid;
      const [, , h, w] = layer.output_shapes[0];
      const more = g.total_channels > g.channels ? ` (the first ${g.channels} of ${g.total_channels})` : "";
      $("grid-note").textContent =
        `${g.channels} channels${more}, each ${h}×${w}, one screen square per unit (×${g.scale}); ` +
        "each channel coloured on its own range (dark = its minimum, yellow = its maximum). Click a unit.";
      $("grid").src = g.png;
    } else if (view.vector) {
      $("grid-note").textContent = `A vector of ${view.vector.length} values (no maps); the largest:`;
      $("vector").replaceChildren(...view.vector.top.map(([i, v]) => element("li", `[${i}] ${number(v)}`)));
    } else {
      $("grid-note").textContent = "This call does not return one tensor of maps.";
    }
    setStatus(`Layer ${layer.label}: ${view.elapsed_ms} ms on the server.`);
  } catch (error) {
    setStatus(error.message, true);
  }
}

function gridClick(event) {
  const g = state.grid;
  if (!g) return;
  const image = $("grid");
  const rect = image.getBoundingClientRect();
  const px = Math.floor(((event.clientX - rect.left) * image.naturalWidth) / rect.width);
  const py = Math.floor(((event.clientY - rect.top) * image.naturalHeight) / rect.height);
  const column = Math.floor(px / (g.tile_width + g.gap));
  const row = Math.floor(py / (g.tile_height + g.gap));
  const insideX = px - column * (g.tile_width + g.gap);
  const insideY = py - row * (g.tile_height + g.gap);
  const channel = row * g.columns + column;
  if (column >= g.columns || insideX >= g.tile_width || insideY >= g.tile_height || channel >= g.channels) return;
  const y = Math.floor(insideY / g.scale);
  const x = Math.floor(insideX / g.scale);
  const mark = $("grid-mark");
  const sx = rect.width / image.naturalWidth;
  mark.style.left = `${(column * (g.tile_width + g.gap) + x * g.scale) * sx}px`;
  mark.style.top = `${(row * (g.tile_height + g.gap) + y * g.scale) * sx}px`;
  mark.style.width = mark.style.height = `${Math.max(4, g.scale * sx)}px`;
  mark.hidden = false;
  showUnit(channel, y, x);
}

function matrix(values, rows, cols, height, width) {
  const table = element("table", null, "matrix");
  values.forEach((line, i) => {
    const tr = element("tr");
    line.forEach((v, j) => {
      const outside = rows && (rows[i] < 0 || rows[i] >= height || cols[j] < 0 || cols[j] >= width);
      tr.append(element("td", v === null ? "·" : number(v, 3), outside || v === null ? "pad" : ""));
    });
    table.append(tr);
  });
  return table;
}

function convMath(unit, layer) {
  const [, , height, width] = layer.input_shape;
  const box = element("div");
  box.append(
    element(
      "p",
      `value = Σ input patch × kernel + bias, over ${unit.input_channels} input channel(s) × ` +
        `${unit.rows.length}×${unit.cols.length} positions = ${grouped(unit.terms)} products. ` +
        `Input rows ${unit.rows[0]}…${unit.rows.at(-1)}, columns ${unit.cols[0]}…${unit.cols.at(-1)} (grey: padding).`,
      "note",
    ),
  );
  const terms = element("div", null, "dot");
  for (const term of unit.shown) {
    const card = element("div", null, "term");
    card.append(element("h4", term.name));
    const ops = element("div", null, "ops");
    ops.append(
      matrix(term.patch, unit.rows, unit.cols, height, width),
      element("span", "×"),
      matrix(term.kernel),
      element("span", `= ${number(term.sum)}`),
    );
    card.append(ops);
    terms.append(card);
  }
  box.append(terms);
  const summands = unit.shown.map((term) => [term.sum, ""]);
  if (unit.rest_channels) summands.push([unit.rest, ` (the other ${unit.rest_channels} channels)`]);
  summands.push([unit.bias, " (bias)"]);
  const written = summands.map(([v, what], i) => {
    const sign = v < 0 ? "− " : i ? "+ " : "";
    return `${sign}${number(Math.abs(v))}${what}`;
  });
  const equation = `${written.join(" ")} = ${number(unit.dot, 7)}`;
  box.append(element("p", equation, "equation"));
  box.append(element("p", `The model's own value: ${number(unit.value, 7)}.`, "note"));
  return box;
}

function unitMath(unit, layer) {
  if (unit.kind === "conv") return convMath(unit, layer);
  const box = element("div");
  if (unit.kind === "maxpool" || unit.kind === "avgpool") {
    const what = unit.kind === "maxpool" ? "the largest value of the window" : `the window's sum / ${unit.divisor}`;
    box.append(element("p", `value = ${what} (grey: padding, left out).`, "note"));
    const [, , height, width] = layer.input_shape;
    box.append(matrix(unit.window, unit.rows, unit.cols, height, width));
    box.append(element("p", `= ${number(unit.result, 7)}; the model's own value: ${number(unit.value, 7)}`, "equation"));
  } else if (unit.kind === "batchnorm" || unit.kind === "activation") {
    box.append(element("p", `${unit.formula} = ${number(unit.result, 7)}; the model's own value: ${number(unit.value, 7)}`, "equation"));
  } else {
    const why = unit.kind === "block" ? "a block's output: what its layers made (plus the shortcut in a residual block)." : "";
    box.append(element("p", `Arithmetic per unit is shown for ${state.model.unit_layers}; this is ${why || layer.type}`, "note"));
  }
  return box;
}

function showField(box) {
  const frame = $("field-box");
  frame.hidden = !box;
  if (!box) return;
  const [, h, w] = state.model.input_size;
  const [top, left, bottom, right] = box;
  frame.style.left = `${(100 * left) / w}%`;
  frame.style.top = `${(100 * top) / h}%`;
  frame.style.width = `${(100 * (right - left)) / w}%`;
  frame.style.height = `${(100 * (bottom - top)) / h}%`;
}

async function showUnit(channel, y, x) {
  const layer = state.model.layers[state.layer];
  setStatus("Computing the unit…");
  try {
    const unit = await call(`/api/images/${state.image}/layers/${state.layer}/unit?channel=${channel}&y=${y}&x=${x}`);
    $("unit-panel").hidden = false;
    $("unit-title").textContent = `Unit: channel ${channel}, row ${y}, column ${x} of ${unit.layer}`;
    $("unit-value").textContent = `value ${number(unit.value, 7)}`;
    showField(unit.box);
    if (unit.box) {
      const [top, left, bottom, right] = unit.box;
      const full = layer.receptive_field; // summary's size per axis: a smaller box was clipped by the border
      const clipped = full && (bottom - top < full[0][0] || right - left < full[1][0]) ? ", clipped at the border" : "";
      $("unit-field").textContent =
        `Receptive field (orange on the image): rows ${top}…${bottom - 1}, columns ${left}…${right - 1} ` +
        `(${bottom - top}×${right - left} pixels${clipped}).`;
    } else {
      $("unit-field").textContent = `Receptive field not measured: ${unit.box_error}`;
    }
    $("unit-math").replaceChildren(unitMath(unit, layer));
    setStatus(`Unit computed in ${unit.elapsed_ms} ms on the server.`);
    showTop(layer, channel);
  } catch (error) {
    setStatus(error.message, true);
  }
}

async function showTop(layer, channel) {
  $("top-panel").hidden = !state.model.data;
  if (!state.model.data) return;
  $("top-patches").replaceChildren();
  if (layer.calls > 1) {
    $("top-note").textContent = "This layer runs more than once per image: pick its block to see top patches.";
    return;
  }
  $("top-note").textContent = `Searching ${state.model.data.searched} images (the first time per layer takes a while)…`;
  try {
    const top = await call(`/api/layers/${layer.index}/top?channel=${channel}`);
    const figures = top.patches.map((patch) => {
      const figure = element("figure");
      const image = element("img");
      image.src = patch.png;
      image.alt = `patch of ${patch.image}`;
      figure.append(image, element("figcaption", `${number(patch.value, 4)} · ${patch.image}`));
      return figure;
    });
    $("top-patches").replaceChildren(...figures);
    $("top-note").textContent =
      `The ${top.patches.length} strongest responses of channel ${channel} in ${top.searched} of ${top.images} images ` +
      `(one per image; ${top.field.join("×")}-pixel fields, checkerboard outside the image; ${top.elapsed_ms} ms).`;
  } catch (error) {
    $("top-note").textContent = error.message;
  }
}

async function showCam() {
  if (!state.image) return;
  $("cam-panel").hidden = false;
  $("cam-note").textContent = "Computing Grad-CAM…";
  try {
    const view = await call(`/api/images/${state.image}/cam?target=${$("cam-class").value}`);
    $("cam").src = view.png;
    $("cam").hidden = false;
    $("cam-note").textContent =
      `Where the model looked for “${view.label}” (p = ${(100 * view.probability).toFixed(1)}%), at layer ${view.layer}.`;
  } catch (error) {
    $("cam-note").textContent = error.message;
  }
}

$("file").addEventListener("change", (event) => upload(event.target.files[0]));
function upload(file) {
  if (!file) return;
  pick("/api/images", { method: "POST", body: file, headers: { "Content-Type": file.type || "application/octet-stream" } });
}
const drop = $("drop");
drop.addEventListener("dragover", (event) => {
  event.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  upload(event.dataTransfer.files[0]);
});
drop.addEventListener("keydown", (event) => {
  if (event.key === "Enter" || event.key === " ") $("file").click();
});
$("data-pick").addEventListener("change", (event) => {
  if (event.target.selectedIndex > 0) pick(`/api/images/data?path=${encodeURIComponent(event.target.value)}`);
});
$("cam-class").addEventListener("change", showCam);
$("grid").addEventListener("click", gridClick);
loadModel();
