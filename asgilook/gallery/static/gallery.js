// The gallery's script: more pages on scroll, the viewer, uploads, live
// changes and deletes, all through asgilook's HTTP API. No framework.

const grid = document.getElementById('gallery');
const empty = document.getElementById('empty');
const status = document.getElementById('status');
const uploads = document.getElementById('uploads');
const form = document.getElementById('upload');
const input = document.getElementById('files');
const viewer = document.getElementById('viewer');
const viewerImage = document.getElementById('viewer-image');
const caption = document.getElementById('viewer-caption');
const previousButton = document.getElementById('viewer-previous');
const nextButton = document.getElementById('viewer-next');
const deleteButton = document.getElementById('viewer-delete');

// The width a browser without srcset gets (page.py picks the same).
const PLAIN_WIDTH = 400;
// The longest side of a picture a tile shows whole (screening.TILE_BOUND).
const TILE_BOUND = 1024;
// Delete tokens of the pictures uploaded from this browser, by image id.
const TOKENS = 'asgilook.delete-tokens';
// Pictures known deleted: a page or an upload's answer sent before may still
// show them.
const deleted = new Set();
// What a request that got no answer says: the server or the network is away.
const UNREACHABLE = 'The server cannot be reached. Try again in a moment.';

function say(text) {
  status.textContent = text;
}

// What an answer of the API says went wrong: its JSON error, else its status.
function problem(body, status, statusText) {
  if (body && body.title) {
    return `${body.title}: ${body.description}`;
  }
  return `The server answered ${status} ${statusText}. Try again later.`;
}

function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

// -- Delete tokens, in the browser's storage

function tokens() {
  try {
    return JSON.parse(localStorage.getItem(TOKENS)) || {};
  } catch {
    return {};
  }
}

function remember(id, token) {
  const kept = tokens();
  kept[id] = token;
  localStorage.setItem(TOKENS, JSON.stringify(kept));
}

function forget(id) {
  const kept = tokens();
  delete kept[id];
  localStorage.setItem(TOKENS, JSON.stringify(kept));
}

// -- Tiles: the grid's items, as page.py renders them

function idOf(item) {
  return item.id.slice('image-'.length);
}

function tileOf(id) {
  return document.getElementById(`image-${id}`);
}

// The formats a <picture> offers before JPEG, smallest files first, and the
// field of the image object listing each (page.py's MODERN_SOURCES).
const MODERN_SOURCES = [
  ['image/avif', 'thumbnails_avif'],
  ['image/webp', 'thumbnails_webp'],
];

function tile(image) {
  const [width, height] = image.size;
  const widths = image.thumbnails.map((uri) =>
    Number(/\/(\d+)x\d+\.jpeg$/.exec(uri)[1]),
  );
  // The picture itself, a JPEG, is in every format's list (page.py says why),
  // unless it is tall: a tall picture is never a source of its tile.
  const whole = !widths.length || height <= width || height <= TILE_BOUND
    ? [[image.image, width]]
    : [];
  const offered = (field) => [
    ...whole,
    ...image[field].map((uri, i) => [uri, widths[i]]),
  ];
  const srcset = (sources) => sources.map(([uri, w]) => `${uri} ${w}w`).join(', ');
  const sources = offered('thumbnails');
  const byWidth = (a, b) => a[1] - b[1];
  const fitting = sources.filter(([, w]) => w >= PLAIN_WIDTH).sort(byWidth);
  const picture = document.createElement('picture');
  for (const [type, field] of MODERN_SOURCES) {
    const source = document.createElement('source');
    source.type = type;
    source.srcset = srcset(offered(field));
    source.sizes = grid.dataset.sizes;
    picture.append(source);
  }
  const img = document.createElement('img');
  img.loading = 'lazy';
  // In its picture before it has a source: the browser picks among them all.
  picture.append(img);
  img.decoding = 'async';
  img.sizes = grid.dataset.sizes;
  img.srcset = srcset(sources);
  img.src = fitting.length ? fitting[0][0] : [...sources].sort(byWidth).at(-1)[0];
  img.width = width;
  img.height = height;
  img.alt = `Picture of ${width} × ${height} pixels, uploaded ${image.modified}`;
  const link = document.createElement('a');
  link.href = image.image;
  link.append(picture);
  const item = document.createElement('li');
  item.className = 'tile';
  item.id = `image-${image.id}`;
  item.dataset.modified = image.modified;
  item.append(link);
  return decorate(item);
}

// Give a tile of a picture uploaded from this browser its delete button.
function decorate(item) {
  const id = idOf(item);
  if (tokens()[id] && !item.querySelector('.delete')) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'delete';
    button.textContent = 'Delete';
    button.setAttribute('aria-label', `Delete ${item.querySelector('img').alt}`);
    button.addEventListener('click', () => destroy(id));
    item.append(button);
  }
  return item;
}

function changed() {
  empty.hidden = grid.children.length > 0;
  if (viewer.open) {
    controls();
  }
}

// A new picture goes first; one already shown gains what it may have lacked.
function place(image) {
  const item = tileOf(image.id);
  if (deleted.has(image.id)) {
    return;
  }
  if (item) {
    decorate(item);
  } else {
    grid.prepend(tile(image));
    changed();
  }
}

function removeTile(id) {
  deleted.add(id);
  if (viewer.open && !current && viewing === id) {
    viewer.close();
  }
  const item = tileOf(id);
  if (!item) {
    return;
  }
  const neighbour = item.nextElementSibling || item.previousElementSibling;
  const focused = item.contains(document.activeElement);
  if (viewer.open && current === item) {
    if (neighbour) {
      show(neighbour);
    } else {
      viewer.close();
    }
  }
  item.remove();
  // A keyboard's place is kept: on the next picture.
  if (focused && neighbour) {
    neighbour.querySelector('a').focus();
  }
  changed();
}

// -- Pages: the list's Link headers, followed as the end comes into view

let nextPage = grid.dataset.next || null;
let loading = null;
const more = document.querySelector('.more');

function nextLink(header) {
  const found = /<([^>]+)>\s*;\s*rel="next"/.exec(header || '');
  return found ? found[1] : null;
}

// Bumped by reload(): a page asked for before is of the old list.
let generation = 0;

function loadMore() {
  if (nextPage && !loading) {
    const asked = generation;
    loading = fetchPage(nextPage, asked).finally(() => {
      if (asked === generation) {
        loading = null;
      }
    });
  }
  return loading || Promise.resolve();
}

async function fetchPage(uri, asked) {
  let response;
  try {
    response = await fetch(uri, { headers: { Accept: 'application/json' } });
  } catch {
    say(UNREACHABLE);
    retryLater();
    return;
  }
  const body = parse(await response.text());
  if (asked !== generation) {
    return;
  }
  if (!response.ok) {
    say(problem(body, response.status, response.statusText));
    retryLater();
    return;
  }
  if (status.textContent === UNREACHABLE) {
    say('');
  }
  for (const image of body) {
    if (!tileOf(image.id) && !deleted.has(image.id)) {
      grid.append(tile(image));
    }
  }
  nextPage = nextLink(response.headers.get('Link'));
  changed();
  watchEnd();
}

// The list from its newest picture again (after the event stream's reset).
async function reload() {
  generation += 1;
  loading = null;
  if (viewer.open) {
    viewer.close();
  }
  grid.replaceChildren();
  nextPage = grid.dataset.first;
  await loadMore();
}

const endObserver = new IntersectionObserver(
  (entries) => {
    if (entries.some((entry) => entry.isIntersecting)) {
      loadMore();
    }
  },
  { rootMargin: '800px 0px' },
);

// The end observed anew a while after a page that failed: asked again if in view.
function retryLater() {
  setTimeout(watchEnd, 5000);
}

// Observed anew after each page, to be told at once if it is still in view.
function watchEnd() {
  endObserver.unobserve(more);
  more.hidden = !nextPage;
  if (nextPage) {
    endObserver.observe(more);
  }
}

// -- The viewer: the full picture, its size and date

// The tile shown, and the id of the picture shown (a picture opened from
// its address may have no tile on this page).
let current = null;
let viewing = null;
// Whether this document pushed the viewer's history entry (not one of a
// document before a reload), for closing to take it back.
let pushed = false;

function show(item) {
  current = item;
  viewing = idOf(item);
  const img = item.querySelector('img');
  viewerImage.src = item.querySelector('a').href;
  viewerImage.alt = img.alt;
  const size = `${img.getAttribute('width')} × ${img.getAttribute('height')} pixels`;
  const date = new Date(item.dataset.modified).toLocaleString();
  caption.textContent = `${size}, uploaded ${date}`;
  controls();
  if (viewer.open) {
    history.replaceState({ viewing: idOf(item) }, '', `#${item.id}`);
  }
}

// A picture further down the list than this page goes: its file alone.
function showAlone(id) {
  current = null;
  viewing = id;
  viewerImage.src = `/images/${id}.jpeg`;
  viewerImage.alt = 'Picture';
  caption.textContent = '';
  controls();
}

// The viewer's buttons, for the picture shown and its neighbours now.
function controls() {
  previousButton.disabled = !current || !current.previousElementSibling;
  nextButton.disabled = !current || (!current.nextElementSibling && !nextPage);
  deleteButton.hidden = !tokens()[viewing];
}

viewerImage.addEventListener('load', () => {
  if (!current) {
    caption.textContent = `${viewerImage.naturalWidth} × ${viewerImage.naturalHeight} pixels`;
  }
});
viewerImage.addEventListener('error', () => {
  if (viewerImage.getAttribute('src')) {
    caption.textContent =
      'This picture cannot be shown: it was deleted, or the server cannot be reached.';
  }
});

const PICTURE_ADDRESS = /^#image-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

// A picture's own address (shared, bookmarked, or Forward onto it) opens
// the viewer on it.
function openFromAddress() {
  const match = PICTURE_ADDRESS.exec(location.hash);
  if (!match || viewer.open) {
    return;
  }
  const item = tileOf(match[1]);
  if (item) {
    show(item);
  } else {
    showAlone(match[1]);
  }
  viewer.showModal();
}

function open(item) {
  show(item);
  viewer.showModal();
  history.pushState({ viewing: idOf(item) }, '', `#${item.id}`);
  pushed = true;
}

async function step(forward) {
  if (!current) {
    return;
  }
  if (forward && !current.nextElementSibling) {
    await loadMore();
  }
  const neighbour = forward ? current.nextElementSibling : current.previousElementSibling;
  if (neighbour) {
    show(neighbour);
  }
}

// On the document: the focused button may go (disabled at the end, Delete
// hidden), leaving the focus on the body.
document.addEventListener('keydown', (event) => {
  if (viewer.open && (event.key === 'ArrowRight' || event.key === 'ArrowLeft')) {
    event.preventDefault();
    step(event.key === 'ArrowRight');
  }
});

// Escape, the close button, or Back: the page's own history entry goes too.
viewer.addEventListener('close', () => {
  if (pushed) {
    pushed = false;
    history.back();
  } else if (PICTURE_ADDRESS.test(location.hash)) {
    // Opened from its address: the address no longer names the picture.
    history.replaceState(null, '', location.pathname + location.search);
  }
  viewerImage.removeAttribute('src');
  if (current && current.isConnected) {
    current.querySelector('a').focus();
  }
});

window.addEventListener('popstate', () => {
  pushed = false;
  if (viewer.open) {
    viewer.close();
  } else if (PICTURE_ADDRESS.test(location.hash)) {
    // Forward onto a picture: closing goes Back to where it came from.
    openFromAddress();
    pushed = true;
  }
});

previousButton.addEventListener('click', () => step(false));
nextButton.addEventListener('click', () => step(true));
document.getElementById('viewer-close').addEventListener('click', () => viewer.close());
deleteButton.addEventListener('click', () => destroy(viewing));

grid.addEventListener('click', (event) => {
  const link = event.target.closest('.tile a');
  // A click with a modifier opens the file itself, as links do.
  if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) {
    return;
  }
  event.preventDefault();
  open(link.parentElement);
});

// -- Uploads: one row each, with its progress and the API's answer

function upload(file) {
  const row = document.createElement('li');
  const name = document.createElement('span');
  name.className = 'name';
  name.textContent = file.name;
  const progress = document.createElement('progress');
  progress.max = 1;
  progress.value = 0;
  progress.setAttribute('aria-label', `Upload of ${file.name}`);
  const message = document.createElement('span');
  message.className = 'message';
  message.textContent = 'Uploading…';
  row.append(name, progress, message);
  uploads.append(row);

  const settle = (text, failed) => {
    message.textContent = text;
    row.classList.add(failed ? 'failed' : 'done');
  };
  const request = new XMLHttpRequest();
  request.open('POST', '/images');
  request.setRequestHeader('Accept', 'application/json');
  request.upload.addEventListener('progress', (event) => {
    if (event.lengthComputable) {
      progress.value = event.loaded / event.total;
    }
  });
  request.addEventListener('load', () => {
    const body = parse(request.responseText);
    if (request.status === 201) {
      progress.value = 1;
      remember(body.id, body.delete_token);
      place(body);
      settle('Uploaded.', false);
    } else {
      settle(problem(body, request.status, request.statusText), true);
    }
  });
  request.addEventListener('error', () => {
    settle('The connection was lost before the server answered. Try again.', true);
  });
  request.send(file);
}

function uploadAll(files) {
  for (const file of files) {
    upload(file);
  }
}

input.addEventListener('change', () => {
  uploadAll(input.files);
  input.value = '';
});

function carriesFiles(event) {
  return event.dataTransfer && event.dataTransfer.types.includes('Files');
}

document.addEventListener('dragover', (event) => {
  if (carriesFiles(event)) {
    event.preventDefault();
    document.body.classList.add('dropping');
  }
});

document.addEventListener('dragleave', (event) => {
  if (!event.relatedTarget) {
    document.body.classList.remove('dropping');
  }
});

document.addEventListener('drop', (event) => {
  if (carriesFiles(event)) {
    event.preventDefault();
    document.body.classList.remove('dropping');
    uploadAll(event.dataTransfer.files);
  }
});

// -- Deletes: with the token this browser was given at the upload

async function destroy(id) {
  let response;
  try {
    response = await fetch(`/images/${id}.jpeg`, {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${tokens()[id]}` },
    });
  } catch {
    say(UNREACHABLE);
    return;
  }
  if (response.status === 204 || response.status === 404) {
    forget(id);
    removeTile(id);
    say('The picture was deleted.');
  } else {
    say(problem(parse(await response.text()), response.status, response.statusText));
  }
}

// -- Live: what any browser or client uploads or deletes, as it happens

// An EventSource given an error answer (a 503 of a full server) stops for
// good: a new one resumes after the last event taken.
let lastEvent = null;

function follow(uri) {
  const source = new EventSource(uri);
  const taking = (handler) => (event) => {
    lastEvent = event.lastEventId || lastEvent;
    handler(JSON.parse(event.data));
  };
  source.addEventListener('image.created', taking(arrive));
  source.addEventListener('image.deleted', taking(removeTile));
  source.addEventListener('reset', taking(() => reload()));
  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CLOSED) {
      const next = lastEvent === null ? uri : `/events?after=${lastEvent}`;
      setTimeout(() => follow(next), 5000);
    }
  });
}

// Events come in the order of the catalog: each new picture goes first,
// though this browser's upload answers may have come in another order.
function arrive(image) {
  place(image);
  const item = tileOf(image.id);
  if (item && item !== grid.firstElementChild) {
    grid.prepend(item);
  }
}

follow(grid.dataset.events);

for (const item of grid.children) {
  decorate(item);
}
form.hidden = false;
more.addEventListener('click', (event) => {
  event.preventDefault();
  loadMore();
});
watchEnd();
openFromAddress();
