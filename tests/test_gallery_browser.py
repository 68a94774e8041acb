"""The gallery as a person uses it: a real headless Chromium, uvicorn and Redis.

Each test drives its browsers through Selenium; when one fails, the screen of
each of its browsers is saved in artifacts/.
"""

import re
from urllib.parse import urlsplit

import httpx
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from asgilook.gallery.page import PAGE_SIZE

from . import servers
from .browser import console_errors, wait
from .images import photo
from .test_gallery import MODERN_SOURCES, sources

pytestmark = pytest.mark.live

# The paths of the thumbnails the browser fetched, in order.
FETCHED_THUMBNAILS = """
return performance.getEntriesByType('resource')
  .map((entry) => new URL(entry.name).pathname)
  .filter((path) => path.startsWith('/thumbnails/'));
"""


@pytest.fixture(scope='module')
def service(tmp_path_factory):
    """A service with two workers, shared by this module's tests."""
    workdir = tmp_path_factory.mktemp('gallery')
    with (
        servers.redis_server(workdir) as redis_url,
        servers.uvicorn_server(
            workdir / 'images', redis_url, '--workers', '2'
        ) as base_url,
    ):
        yield base_url


@pytest.fixture(scope='module')
def pictures(tmp_path_factory):
    """Two photos as files a person would pick, with a thumbnail ladder each."""
    folder = tmp_path_factory.mktemp('pictures')
    paths = []
    for seed, size in ((1, (1600, 1200)), (2, (900, 1200))):
        path = folder / f'holiday-{seed}.jpg'
        path.write_bytes(photo(size, seed))
        paths.append(path)
    return paths


def open_gallery(driver, base_url: str) -> None:
    driver.get(f'{base_url}/')
    wait_for_script(driver)


def wait_for_script(driver) -> None:
    # The upload form shows once the script runs.
    wait(driver, lambda d: d.find_element(By.ID, 'upload').is_displayed())


def tile(driver, image_id: str):
    found = driver.find_elements(By.ID, f'image-{image_id}')
    return found[0] if found else None


def expected_srcset(image: dict, field: str = 'thumbnails') -> str:
    """The API's picture and its thumbnail ladder in a format, with their widths."""
    return ', '.join(f'{uri} {width}w' for uri, width in sources(image, field))


def assert_shows(driver, image: dict) -> None:
    img = tile(driver, image['id']).find_element(By.TAG_NAME, 'img')
    offers = tile(driver, image['id']).find_elements(By.TAG_NAME, 'source')
    assert [
        (offer.get_dom_attribute('type'), offer.get_dom_attribute('srcset'))
        for offer in offers
    ] == [
        (media_type, expected_srcset(image, field))
        for media_type, field in MODERN_SOURCES
    ]
    assert {offer.get_dom_attribute('sizes') for offer in offers} == {
        img.get_dom_attribute('sizes')
    }
    assert img.get_dom_attribute('srcset') == expected_srcset(image)
    assert img.get_dom_attribute('sizes')
    assert img.get_dom_attribute('width') == str(image['size'][0])
    assert img.get_dom_attribute('height') == str(image['size'][1])
    assert img.get_dom_attribute('loading') == 'lazy'
    assert f'{image["size"][0]} × {image["size"][1]}' in img.get_dom_attribute('alt')
    # Decoded and painted from one of its sources.
    wait(driver, lambda d: img.get_property('complete'), 'thumbnail never loaded')
    assert img.get_property('naturalWidth') > 0
    # Chromium shows AVIF: the smallest files are the ones it takes.
    shown = urlsplit(img.get_property('currentSrc')).path
    assert shown in expected_srcset(image, 'thumbnails_avif')


def test_uploads_appear_here_and_live_elsewhere_and_only_here_can_delete(
    service, browsers, pictures
):
    uploader, watcher = browsers(scale=2), browsers(width=500, height=900)
    for driver in (uploader, watcher):
        open_gallery(driver, service)

    uploader.find_element(By.ID, 'files').send_keys(
        '\n'.join(str(path) for path in pictures)
    )

    wait(
        uploader,
        lambda d: d.find_element(By.ID, 'uploads').text.count('Uploaded.') == 2,
        'the two uploads did not both finish',
    )
    images = httpx.get(f'{service}/images?limit=2&order=newest').json()
    for driver in (uploader, watcher):
        wait(driver, lambda d: all(tile(d, image['id']) for image in images))
        for image in images:
            assert_shows(driver, image)
    # Newest first, in both.
    for driver in (uploader, watcher):
        shown = [
            item.get_dom_attribute('id')
            for item in driver.find_elements(By.CSS_SELECTOR, '#gallery .tile')
        ][:2]
        assert shown == [f'image-{image["id"]}' for image in images]
    # Each screen downloads the size it shows, as AVIF, and nothing else of
    # it: the narrowest window (two columns, 250 pixels wide) 400 of the
    # 1600, the wide one with two device pixels to each (five columns,
    # 2 × 256) 800.
    wide = next(image for image in images if image['size'] == [1600, 1200])
    shown = [
        driver.execute_script(
            'return document.querySelector(arguments[0]).currentSrc',
            f'#image-{wide["id"]} img',
        )
        for driver in (uploader, watcher)
    ]
    fetched = [
        [
            path
            for path in driver.execute_script(FETCHED_THUMBNAILS)
            if wide['id'] in path
        ]
        for driver in (uploader, watcher)
    ]
    assert [urlsplit(uri).path for uri in shown] == [
        wide['thumbnails_avif'][0],
        wide['thumbnails_avif'][1],
    ]
    assert fetched == [[wide['thumbnails_avif'][0]], [wide['thumbnails_avif'][1]]]
    assert len(uploader.find_elements(By.CSS_SELECTOR, '#gallery .delete')) == 2
    assert watcher.find_elements(By.CSS_SELECTOR, '#gallery .delete') == []

    gone = images[0]
    tile(uploader, gone['id']).find_element(By.CLASS_NAME, 'delete').click()

    for driver in (uploader, watcher):
        wait(driver, lambda d: tile(d, gone['id']) is None, 'the deleted one stayed')
        assert tile(driver, images[1]['id']) is not None
    assert httpx.get(f'{service}{gone["image"]}').status_code == 404
    assert console_errors(uploader) == []
    assert console_errors(watcher) == []

    # The page's own tiles, in its HTML, offer the same.
    kept = images[1]
    open_gallery(watcher, service)
    assert_shows(watcher, kept)
    fetched = watcher.execute_script(FETCHED_THUMBNAILS)
    assert [path for path in fetched if kept['id'] in path] == [
        urlsplit(
            watcher.execute_script(
                'return document.querySelector(arguments[0]).currentSrc',
                f'#image-{kept["id"]} img',
            )
        ).path
    ]
    assert console_errors(watcher) == []


def test_a_file_the_api_refuses_shows_its_error_beside_it(service, browsers, tmp_path):
    files = {
        'empty.jpg': b'',
        'notes.txt': b'Shopping list: bread, milk.\n',
        # Over the 32 MiB an upload may be.
        'huge.jpg': b'\xff\xd8\xff' + bytes(40 * 1024 * 1024),
    }
    errors = {}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        errors[name] = httpx.post(f'{service}/images', content=data).json()
    driver = browsers()
    open_gallery(driver, service)
    before = httpx.get(f'{service}/images').json()

    driver.find_element(By.ID, 'files').send_keys(
        '\n'.join(str(tmp_path / name) for name in files)
    )

    rows = wait(
        driver,
        lambda d: (
            (found := d.find_elements(By.CSS_SELECTOR, '#uploads li.failed'))
            and len(found) == 3
            and found
        ),
        'three failed uploads were not all shown',
    )
    shown = {
        row.find_element(By.CLASS_NAME, 'name').text: row.find_element(
            By.CLASS_NAME, 'message'
        ).text
        for row in rows
    }
    assert shown == {
        name: f'{error["title"]}: {error["description"]}'
        for name, error in errors.items()
    }
    assert httpx.get(f'{service}/images').json() == before
    # The browser notes each refused request; nothing else went wrong.
    assert sorted(
        re.search(r'status of (\d+)', entry['message'])[1]
        for entry in console_errors(driver)
        if entry['source'] == 'network' and '/images' in entry['message']
    ) == ['400', '413', '415']
    assert [
        entry for entry in console_errors(driver) if entry['source'] != 'network'
    ] == []


def test_the_viewer_works_from_the_keyboard_alone(service, browsers, pictures):
    for path in pictures:
        assert httpx.post(f'{service}/images', content=path.read_bytes()).is_success
    images = httpx.get(f'{service}/images?limit=3&order=newest').json()
    driver = browsers()
    open_gallery(driver, service)
    keys = ActionChains(driver)

    # Tab from the top: the upload button comes first, then the pictures.
    focused = []
    for _ in range(10):
        keys.send_keys(Keys.TAB).perform()
        focused.append(driver.switch_to.active_element)
        if focused[-1].get_dom_attribute('href'):
            break
    assert focused[0].get_dom_attribute('id') == 'files'
    assert focused[-1].get_dom_attribute('href').endswith(images[0]['image'])

    keys.send_keys(Keys.ENTER).perform()
    viewer_shows(driver, images[0])
    keys.send_keys(Keys.ARROW_RIGHT).perform()
    viewer_shows(driver, images[1])
    keys.send_keys(Keys.ARROW_LEFT).perform()
    viewer_shows(driver, images[0])
    keys.send_keys(Keys.ARROW_RIGHT).perform()
    viewer_shows(driver, images[1])
    keys.send_keys(Keys.ESCAPE).perform()

    wait(driver, lambda d: not viewer_open(d), 'Escape left the viewer open')
    # Back where the viewer was left, to go on from there: the dialog's own
    # close gives the focus back to its opener first, and the gallery moves
    # it on at the close event, a task later.
    wait(
        driver,
        lambda d: (d.switch_to.active_element.get_dom_attribute('href') or '').endswith(
            images[1]['image']
        ),
        'Escape left the focus elsewhere than on the picture last shown',
    )
    keys.send_keys(Keys.ENTER).perform()
    viewer_shows(driver, images[1])
    driver.back()
    wait(driver, lambda d: not viewer_open(d), 'Back left the viewer open')
    assert '#' not in driver.current_url
    assert console_errors(driver) == []


def viewer_open(driver) -> bool:
    return driver.execute_script("return document.getElementById('viewer').open")


def viewer_shows(driver, image: dict) -> None:
    wait(
        driver,
        lambda d: (
            viewer_open(d)
            and d.find_element(By.ID, 'viewer-image')
            .get_dom_attribute('src')
            .endswith(image['image'])
        ),
        f'the viewer does not show {image["image"]}',
    )
    # Of a picture further down than the page, from its file once it loads.
    size = f'{image["size"][0]} × {image["size"][1]} pixels'
    wait(driver, lambda d: size in d.find_element(By.ID, 'viewer-caption').text)
    assert driver.current_url.endswith(f'#image-{image["id"]}')


def test_a_pictures_address_opens_the_viewer_on_it(service, browsers, pictures):
    """A shared link: a picture on the page, one further down, one deleted."""
    further = httpx.post(f'{service}/images', content=pictures[1].read_bytes()).json()
    for seed in range(PAGE_SIZE):  # Enough to move it off the first page.
        httpx.post(f'{service}/images', content=photo((320, 240), 10 + seed))
    shown = httpx.get(f'{service}/images?limit=1&order=newest').json()[0]
    deleted = httpx.post(f'{service}/images', content=photo((320, 240), 99)).json()
    httpx.delete(
        f'{service}{deleted["image"]}',
        headers={'Authorization': f'Bearer {deleted["delete_token"]}'},
    ).raise_for_status()
    driver = browsers()

    visit(driver, f'{service}/#image-{shown["id"]}')
    viewer_shows(driver, shown)
    ActionChains(driver).send_keys(Keys.ESCAPE).perform()
    wait(driver, lambda d: not viewer_open(d), 'Escape left the viewer open')
    # The address no longer names the picture (once the history has moved
    # back to the page's own entry); Forward names it again.
    wait(
        driver,
        lambda d: urlsplit(d.current_url).fragment == '',
        'Escape left the picture in the address',
    )
    tile(driver, shown['id']).find_element(By.TAG_NAME, 'a').click()
    viewer_shows(driver, shown)
    driver.back()
    wait(driver, lambda d: not viewer_open(d), 'Back left the viewer open')
    driver.forward()
    viewer_shows(driver, shown)

    # Not among the pictures the page comes with (the script may fetch it).
    assert further['id'] not in httpx.get(f'{service}/').text
    visit(driver, f'{service}/#image-{further["id"]}')
    viewer_shows(driver, further)
    for button in ('viewer-previous', 'viewer-next'):
        assert not driver.find_element(By.ID, button).is_enabled()

    visit(driver, f'{service}/#image-{deleted["id"]}')
    wait(
        driver,
        lambda d: 'cannot be shown' in d.find_element(By.ID, 'viewer-caption').text,
        'a deleted picture was not said to be gone',
    )
    assert [
        entry for entry in console_errors(driver) if entry['source'] != 'network'
    ] == []


def visit(driver, address: str) -> None:
    """Load address afresh: a new page, not a move within the one shown."""
    driver.get('about:blank')
    driver.get(address)
    wait_for_script(driver)
