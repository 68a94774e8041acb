"""A real headless Chromium for the gallery's tests, driven through Selenium."""

import os
import pathlib
import shutil

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.wait import WebDriverWait

from . import servers

CHROMIUM_HELP = (
    'The browser tests need Chromium and its driver on PATH (or their paths in '
    'ASGI_LOOK_TEST_CHROMIUM and ASGI_LOOK_TEST_CHROMEDRIVER). On Debian: '
    'sudo apt-get install chromium chromium-driver.'
)
# Screenshots: of every browser of a test that failed, and the README's.
ARTIFACTS = pathlib.Path(__file__).resolve().parent.parent / 'artifacts'
# How long a test waits for the page to show what it expects.
WAIT_SECONDS = 15


def _binary(variable: str, *names: str) -> str:
    found = os.environ.get(variable) or next(
        filter(None, map(shutil.which, names)), None
    )
    if not found:
        raise RuntimeError(CHROMIUM_HELP)
    return found


def start(width: int = 1280, height: int = 900, scale: int = 1, script: bool = True):
    """Start a headless Chromium with a profile of its own; return its driver."""
    options = webdriver.ChromeOptions()
    options.binary_location = _binary(
        'ASGI_LOOK_TEST_CHROMIUM', 'chromium', 'chromium-browser', 'google-chrome'
    )
    for argument in (
        '--headless=new',
        # CI runs as root, where Chromium's sandbox cannot start.
        '--no-sandbox',
        '--disable-dev-shm-usage',
        '--no-first-run',
        # Device pixels per CSS pixel: 2 as on a 4K or a phone's screen.
        f'--force-device-scale-factor={scale}',
        f'--window-size={width},{height}',
    ):
        options.add_argument(argument)
    if not script:
        options.add_experimental_option(
            'prefs', {'profile.managed_default_content_settings.javascript': 2}
        )
    options.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    service = Service(
        _binary('ASGI_LOOK_TEST_CHROMEDRIVER', 'chromedriver'),
        # Every CPU, as the servers get (the test process may keep to one).
        popen_kw={'preexec_fn': servers.on_every_cpu},
    )
    return webdriver.Chrome(service=service, options=options)


def wait(driver, condition, message: str = ''):
    """Return condition(driver) once it is true; fail after WAIT_SECONDS."""
    return WebDriverWait(driver, WAIT_SECONDS).until(condition, message)


def console_errors(driver) -> list[dict]:
    """The console's errors since last asked (a failed request's among them)."""
    return [entry for entry in driver.get_log('browser') if entry['level'] == 'SEVERE']


def screenshot(driver, name: str) -> pathlib.Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f'{name}.png'
    driver.save_screenshot(str(path))
    return path
