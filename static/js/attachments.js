/* Files and voice notes from the composer: attach (file picker, drag and drop, paste of an
 * image), preview with a caption (a file name for documents), upload with a progress bar, and
 * voice notes recorded with MediaRecorder.
 *
 * The file goes to the same URL as a text send (the composer's data-send-url) as
 * multipart/form-data (`file`, optional `caption`) with an Idempotency-Key, through
 * XMLHttpRequest: fetch reports no upload progress. While it uploads, a pending bubble stands in
 * the thread; the real message replaces it on the next refresh. WhatsApp's limits are checked
 * here only for instant feedback: the server judges the file by its content and its answer (413,
 * 415, 400…) is what the agent reads. Runs under the strict CSP: no inline code, text set with
 * textContent, previews from object URLs (img-src / media-src allow blob:). Loaded after app.js,
 * whose few helpers it uses through window.inboxComposer.
 */
"use strict";

(() => {
  const composer = document.getElementById("composer");
  const hooks = window.inboxComposer;
  if (!composer || !hooks || !document.getElementById("attachment")) return;
  const $ = (id) => document.getElementById(id);
  const T = hooks.strings;

  const panel = $("attachment");
  const previewBox = $("attachment-preview");
  const docIcon = $("attachment-icon");
  const nameBox = $("attachment-name");
  const sizeBox = $("attachment-size");
  const captionField = $("attachment-caption-field");
  const captionLabel = $("attachment-caption-label");
  const captionInput = $("attachment-caption");
  const progressBox = $("attachment-progress");
  const progressBar = $("attachment-progress-bar");
  const progressText = $("attachment-progress-text");
  const removeButton = $("attachment-remove");
  removeButton.dataset.label = removeButton.getAttribute("aria-label");
  const sendButton = $("attachment-send");
  const fileInput = $("attach-input");
  const attachButton = $("attach-btn");
  const recordButton = $("record-btn");
  const recorderBar = $("recorder");
  const recordTime = $("record-time");
  const dropTarget = $("drop-target");
  const pane = composer.closest(".thread-pane") || composer;
  const thread = $("thread");

  /* --- WhatsApp's limits (the server's are the rule: app's media validation) ------------ */
  const KB = 1024;
  const MB = 1024 * KB;
  const LIMITS = { image: 5 * MB, sticker: 500 * KB, video: 16 * MB, audio: 16 * MB, voice: 16 * MB, document: 100 * MB };
  const TOO_LARGE = {
    image: "imageTooLarge",
    sticker: "stickerTooLarge",
    video: "videoTooLarge",
    audio: "audioTooLarge",
    voice: "audioTooLarge",
    document: "documentTooLarge",
  };
  const KINDS = {
    "image/jpeg": "image",
    "image/png": "image",
    "image/webp": "sticker",
    "video/mp4": "video",
    "video/3gpp": "video",
    "audio/aac": "audio",
    "audio/amr": "audio",
    "audio/mpeg": "audio",
    "audio/mp3": "audio",
    "audio/mp4": "audio",
    "audio/m4a": "audio",
    "audio/x-m4a": "audio",
    "audio/ogg": "audio",
    "audio/opus": "audio",
    "audio/webm": "audio", // converted to OGG/Opus by the server when it holds Opus
    "application/pdf": "document",
    "text/plain": "document",
    "application/msword": "document",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "document",
    "application/vnd.ms-excel": "document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "document",
    "application/vnd.ms-powerpoint": "document",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "document",
  };
  const FAMILY_ERRORS = { image: "imageType", video: "videoType", audio: "audioType" };

  const number = (value, digits) =>
    new Intl.NumberFormat(document.documentElement.lang || undefined, { maximumFractionDigits: digits }).format(value);
  function formatSize(bytes) {
    if (bytes < KB) return `${bytes} B`;
    if (bytes < MB) return `${number(bytes / KB, 0)} KB`;
    return `${number(bytes / MB, 1)} MB`;
  }
  const formatSeconds = (seconds) => `${Math.floor(seconds / 60)}:${String(Math.floor(seconds % 60)).padStart(2, "0")}`;

  /* The kind WhatsApp would send the file as, or the reason it would not take it. */
  function precheck(file, kind) {
    const type = (file.type || "").split(";")[0].trim().toLowerCase();
    if (!kind) {
      kind = KINDS[type];
      if (!kind && type) {
        const family = FAMILY_ERRORS[type.split("/")[0]] || "fileType";
        return { error: T[family].replace("{type}", type) };
      }
      kind = kind || "document"; // the browser did not say: the server reads the content
    }
    if (file.size === 0) return { error: T.fileEmpty };
    if (file.size > LIMITS[kind]) return { error: T[TOO_LARGE[kind]].replace("{size}", formatSize(file.size)) };
    return { kind };
  }

  /* --- the staged file: preview, caption, remove ---------------------------------------- */
  let staged = null; // { file, kind, url, duration, key, signature }
  let uploading = null; // { xhr, bubble, aborted }
  const mode = () => composer.dataset.mode;

  function mediaElement(kind, url) {
    if (kind === "image" || kind === "sticker") {
      const img = document.createElement("img");
      img.src = url;
      img.alt = "";
      return img;
    }
    if (kind === "video") {
      const video = document.createElement("video");
      video.src = url;
      video.controls = true;
      video.preload = "metadata";
      return video;
    }
    if (kind === "audio" || kind === "voice") {
      const audio = document.createElement("audio");
      audio.src = url;
      audio.controls = true;
      audio.preload = "metadata";
      return audio;
    }
    return null;
  }

  function displayName(item) {
    return item.kind === "voice" ? `${T.voiceNote} · ${formatSeconds(item.duration || 0)}` : item.file.name;
  }

  function clearStaged() {
    if (staged) URL.revokeObjectURL(staged.url);
    staged = null;
    for (const node of Array.from(previewBox.children)) if (node !== docIcon) node.remove();
    panel.hidden = true;
    progressBox.hidden = true;
    composer.classList.remove("has-attachment");
    fileInput.value = "";
    captionInput.value = "";
  }

  function stage(file, kind, duration) {
    if (uploading) return;
    const checked = precheck(file, kind);
    if (checked.error) {
      hooks.showError(checked.error);
      return;
    }
    hooks.showError("");
    clearStaged();
    staged = { file, kind: checked.kind, url: URL.createObjectURL(file), duration, key: null, signature: null };
    const media = mediaElement(staged.kind, staged.url);
    docIcon.hidden = Boolean(media);
    if (media) {
      // A file the browser cannot draw (not really an image?) shows as a file chip: the server judges it.
      media.addEventListener("error", () => {
        media.remove();
        docIcon.hidden = false;
      });
      previewBox.append(media);
    }
    panel.dataset.kind = staged.kind;
    nameBox.textContent = displayName(staged);
    sizeBox.textContent = formatSize(file.size);
    const captioned = ["image", "video", "document"].includes(staged.kind);
    captionField.hidden = !captioned;
    const isDocument = staged.kind === "document";
    captionLabel.textContent = isDocument ? captionLabel.dataset.filename : captionLabel.dataset.caption;
    captionInput.maxLength = isDocument ? 240 : 1024;
    captionInput.value = isDocument ? file.name : "";
    setBusy(false);
    panel.hidden = false;
    composer.classList.add("has-attachment");
    (captioned ? captionInput : sendButton).focus();
  }

  function takeFiles(files) {
    if (!files || !files.length || recording) return;
    if (mode() === "note") {
      hooks.showError(T.attachInNote);
      return;
    }
    if (mode() !== "text") {
      hooks.showError(T.windowClosedError);
      return;
    }
    if (files.length > 1) hooks.toast(T.oneFile);
    stage(files[0]);
  }

  attachButton.addEventListener("click", () => fileInput.click());
  fileInput.addEventListener("change", () => takeFiles(fileInput.files));
  removeButton.addEventListener("click", () => {
    if (uploading) {
      uploading.aborted = true;
      uploading.xhr.abort();
      return;
    }
    clearStaged();
    hooks.showError("");
    $("message-text").focus();
  });
  sendButton.addEventListener("click", send);
  captionInput.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.isComposing) {
      event.preventDefault();
      send();
    } else if (event.key === "Escape" && !uploading) {
      clearStaged();
      $("message-text").focus();
    }
  });

  /* Drag and drop onto the thread or the composer: a drop target covers the pane. */
  const hasFiles = (event) => Boolean(event.dataTransfer) && Array.from(event.dataTransfer.types || []).includes("Files");
  pane.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dropTarget.hidden = false;
  });
  pane.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    dropTarget.hidden = false;
  });
  dropTarget.addEventListener("dragleave", (event) => {
    if (!event.relatedTarget || !dropTarget.contains(event.relatedTarget)) dropTarget.hidden = true;
  });
  pane.addEventListener("drop", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dropTarget.hidden = true;
    takeFiles(event.dataTransfer.files);
  });
  // A file dropped anywhere else is not opened by the browser in place of the inbox.
  window.addEventListener("dragover", (event) => hasFiles(event) && event.preventDefault());
  window.addEventListener("drop", (event) => {
    if (hasFiles(event)) event.preventDefault();
    dropTarget.hidden = true;
  });

  /* Paste of an image (a screenshot) into the composer. */
  document.addEventListener("paste", (event) => {
    const target = event.target;
    if (!(target === document.body || composer.contains(target) || pane.contains(target))) return;
    const files = Array.from((event.clipboardData && event.clipboardData.files) || []).filter((file) =>
      file.type.startsWith("image/"),
    );
    if (!files.length) return;
    event.preventDefault();
    takeFiles(files);
  });

  /* --- the upload ------------------------------------------------------------------------ */
  function setBusy(busy) {
    composer.classList.toggle("is-uploading", busy);
    sendButton.disabled = busy;
    captionInput.readOnly = busy;
    attachButton.disabled = busy;
    if (recordButton) recordButton.disabled = busy;
    const label = busy ? T.cancelUpload : removeButton.dataset.label;
    removeButton.setAttribute("aria-label", label);
    removeButton.title = label;
  }

  function showProgress(fraction, bubble) {
    const percent = Math.round(fraction * 100);
    progressBox.hidden = false;
    progressBar.value = percent;
    progressText.textContent = `${percent} %`;
    const bar = bubble.querySelector(".upload-bar");
    bar.value = percent;
    if (percent >= 100) {
      const state = bubble.querySelector(".upload-state");
      state.textContent = state.dataset.sending;
    }
  }

  const messages = () => $("messages");
  function scrollToBottom() {
    const list = messages();
    if (list) list.scrollTop = list.scrollHeight;
  }

  function pendingBubble(item, caption) {
    const li = $("upload-bubble").content.firstElementChild.cloneNode(true);
    li.id = `upload-${item.key}`;
    li.dataset.url = URL.createObjectURL(item.file);
    const holder = li.querySelector(".upload-media");
    const media = mediaElement(item.kind, li.dataset.url);
    if (media && media.tagName === "IMG") {
      const frame = document.createElement("span");
      frame.className = `media media-${item.kind}`;
      frame.append(media);
      holder.append(frame);
    } else if (media) {
      media.classList.add("media", `media-${item.kind === "voice" ? "audio" : item.kind}`);
      holder.append(media);
    } else {
      const chip = document.createElement("span");
      chip.className = "document";
      chip.append($("upload-doc").content.cloneNode(true));
      const name = document.createElement("span");
      name.className = "doc-name";
      name.textContent = caption || item.file.name;
      const size = document.createElement("span");
      size.className = "doc-type";
      size.textContent = formatSize(item.file.size);
      chip.append(name, size);
      holder.append(chip);
    }
    if (caption && item.kind !== "document") {
      const text = li.querySelector(".upload-caption");
      text.textContent = caption;
      text.hidden = false;
    }
    messages().append(li);
    scrollToBottom();
    return li;
  }

  function dropBubble(li) {
    URL.revokeObjectURL(li.dataset.url);
    li.remove();
  }

  const pendingBubbles = new Set(); // stand-ins still uploading

  // After each refresh: the real message replaces its stand-in; a stand-in a merge dropped comes back.
  if (thread) {
    thread.addEventListener("htmx:afterSwap", () => {
      for (const li of document.querySelectorAll(".msg-upload")) {
        const id = li.dataset.messageId;
        if (id && document.getElementById(`m-${id}`)) {
          const list = messages();
          const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 200;
          dropBubble(li);
          if (atBottom) scrollToBottom();
        }
      }
      for (const li of pendingBubbles) if (!li.isConnected) messages().append(li);
    });
  }

  const serverMessage = (data) => {
    if (!data) return "";
    if (data.error && typeof data.error === "object") return data.error.message || "";
    return typeof data.message === "string" ? data.message : "";
  };

  function post(item, caption, bubble) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      uploading = { xhr, bubble, aborted: false };
      xhr.open("POST", composer.dataset.sendUrl);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-CSRFToken", hooks.csrfToken);
      xhr.setRequestHeader("Idempotency-Key", item.key);
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) showProgress(event.loaded / event.total, bubble);
      });
      xhr.addEventListener("load", () => {
        let data = null;
        try {
          data = JSON.parse(xhr.responseText);
        } catch (_error) {
          data = null;
        }
        resolve({ status: xhr.status, data });
      });
      for (const kind of ["error", "abort", "timeout"]) xhr.addEventListener(kind, () => resolve({ status: 0, data: null }));
      const form = new FormData();
      form.append("file", item.file, item.file.name);
      // A document's field is the name the customer sees; the others' is the caption.
      if (caption) form.append(item.kind === "document" ? "filename" : "caption", caption);
      if (item.replyTo) form.append("reply_to", String(item.replyTo));
      xhr.send(form);
    });
  }

  const newKey = () => (window.crypto && crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`);

  async function send() {
    if (!staged || uploading) return;
    hooks.showError("");
    const item = staged;
    const caption = captionField.hidden ? "" : captionInput.value.trim();
    item.replyTo = hooks.replyTo();
    // The same file, caption and quote after a network error reuse their key: never sent twice.
    const signature = JSON.stringify([caption, item.replyTo]);
    if (item.signature !== signature) {
      item.signature = signature;
      item.key = newKey();
    }
    setBusy(true);
    const bubble = pendingBubble(item, caption);
    pendingBubbles.add(bubble);
    showProgress(0, bubble);
    const result = await post(item, caption, bubble);
    const aborted = uploading.aborted;
    uploading = null;
    setBusy(false);
    const data = result.data || {};
    const id = result.status === 201 ? data.message && data.message.id : data.message_id;
    if (id && [201, 409, 502].includes(result.status)) {
      // Stored: accepted, or refused by WhatsApp and shown failed with Meta's reason (and a retry).
      bubble.dataset.messageId = String(id);
      bubble.dataset.done = "1";
      pendingBubbles.delete(bubble);
      setTimeout(() => bubble.isConnected && dropBubble(bubble), 30000);
      clearStaged();
      if (item.replyTo) hooks.cancelReply();
      if (data.error === "window_closed") hooks.showError(T.windowClosedError);
      hooks.refresh();
      return;
    }
    pendingBubbles.delete(bubble);
    dropBubble(bubble);
    progressBox.hidden = true;
    if (aborted) {
      clearStaged();
      hooks.refresh(); // the server may have had all of it already
      return;
    }
    if (result.status === 401) {
      hooks.sessionEnded();
      return;
    }
    if (result.status === 403 && data.error === "csrf_failed") {
      hooks.showError(T.csrf);
      return;
    }
    if (result.status === 0) {
      hooks.showError(T.uploadNetwork);
      return;
    }
    item.key = null; // refused: nothing was kept; the next attempt is a new request
    item.signature = null;
    if (data.error === "window_closed") {
      hooks.showError(T.windowClosedError);
      hooks.refresh();
      return;
    }
    hooks.showError(T.uploadFailed.replace("{reason}", serverMessage(data) || T.genericError));
  }

  /* --- voice notes ------------------------------------------------------------------------ */
  let recording = null; // { recorder, stream, started, timer, cancelled }
  const canRecord =
    typeof window.MediaRecorder === "function" &&
    Boolean(navigator.mediaDevices) &&
    typeof navigator.mediaDevices.getUserMedia === "function";
  if (recordButton) recordButton.hidden = !canRecord;

  function microphoneError(error) {
    const name = error && error.name;
    if (name === "NotAllowedError" || name === "SecurityError") return T.micDenied;
    if (name === "NotFoundError" || name === "OverconstrainedError" || name === "NotReadableError") return T.micMissing;
    return T.micFailed;
  }

  function stopRecording(cancel) {
    if (!recording) return;
    recording.cancelled = cancel;
    clearInterval(recording.timer);
    recorderBar.hidden = true; // at once: the recorder's last data comes a moment later
    composer.classList.remove("is-recording");
    if (recording.recorder.state !== "inactive") recording.recorder.stop();
    else finishRecording();
  }

  function finishRecording(chunks, type) {
    const done = recording;
    recording = null;
    for (const track of done.stream.getTracks()) track.stop();
    recorderBar.hidden = true;
    composer.classList.remove("is-recording");
    if (done.cancelled || !chunks || !chunks.length) {
      recordButton.focus();
      return;
    }
    const base = (type || "audio/webm").split(";")[0];
    const file = new File(chunks, `voice-note.${base === "audio/ogg" ? "ogg" : "webm"}`, { type: base });
    stage(file, "voice", (Date.now() - done.started) / 1000);
  }

  async function startRecording() {
    if (recording || uploading || !canRecord) return;
    hooks.showError("");
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (error) {
      hooks.showError(microphoneError(error));
      return;
    }
    const wanted = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm"].find((type) =>
      MediaRecorder.isTypeSupported(type),
    );
    let recorder;
    try {
      recorder = new MediaRecorder(stream, wanted ? { mimeType: wanted } : undefined);
    } catch (_error) {
      for (const track of stream.getTracks()) track.stop();
      hooks.showError(T.micFailed);
      return;
    }
    const chunks = [];
    recorder.addEventListener("dataavailable", (event) => {
      if (event.data && event.data.size) chunks.push(event.data);
    });
    recorder.addEventListener("stop", () => finishRecording(chunks, recorder.mimeType || wanted));
    if (staged) clearStaged();
    recording = { recorder, stream, started: Date.now(), cancelled: false, timer: null };
    recordTime.textContent = formatSeconds(0);
    recording.timer = setInterval(() => {
      recordTime.textContent = formatSeconds((Date.now() - recording.started) / 1000);
    }, 250);
    recorder.start(1000);
    recorderBar.hidden = false;
    composer.classList.add("is-recording");
    $("record-stop").focus();
  }

  if (recordButton) recordButton.addEventListener("click", startRecording);
  $("record-stop").addEventListener("click", () => stopRecording(false));
  $("record-cancel").addEventListener("click", () => stopRecording(true));
  recorderBar.addEventListener("keydown", (event) => {
    if (event.key === "Escape") stopRecording(true);
  });

  // Leaving the Message tab (a note, a template, the window closing) discards a recording.
  new MutationObserver(() => {
    if (mode() !== "text") stopRecording(true);
  }).observe(composer, { attributes: true, attributeFilter: ["data-mode"] });
})();
