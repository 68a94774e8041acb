import os
import pathlib
import re

import pytest
import redis.asyncio

from asgilook.config import Config
from asgilook.errors import ConfigError
from asgilook.serving.settings import unknown_settings


def test_defaults():
    config = Config(environ={})

    assert config.storage_path == '/tmp/asgilook'
    assert config.min_thumb_size == 64
    assert config.redis_host == 'redis://localhost'
    assert config.redis_from_url is redis.asyncio.from_url
    assert config.uuid_generator().version == 4


def test_environment_is_read():
    config = Config(
        environ={
            'ASGI_LOOK_STORAGE_PATH': '/srv/images',
            'ASGI_LOOK_MIN_THUMB_SIZE': ' 32 ',
            'ASGI_LOOK_REDIS_HOST': 'redis://cache.internal:6380/2',
        }
    )

    assert config.storage_path == '/srv/images'
    assert config.min_thumb_size == 32
    assert config.redis_host == 'redis://cache.internal:6380/2'


def test_process_environment_is_the_default(monkeypatch):
    monkeypatch.setenv('ASGI_LOOK_MIN_THUMB_SIZE', '100')

    assert Config().min_thumb_size == 100


@pytest.mark.parametrize('value', ['abc', '0', '-5', '1.5'])
def test_bad_thumb_size_names_the_variable(value):
    with pytest.raises(ConfigError, match='ASGI_LOOK_MIN_THUMB_SIZE'):
        Config(environ={'ASGI_LOOK_MIN_THUMB_SIZE': value})


@pytest.mark.parametrize('value', ['localhost', 'http://localhost', '6379'])
def test_bad_redis_url_names_the_variable(value):
    with pytest.raises(ConfigError, match='ASGI_LOOK_REDIS_HOST'):
        Config(environ={'ASGI_LOOK_REDIS_HOST': value})


def test_attributes_can_be_replaced(tmp_path):
    config = Config(environ={})
    config.storage_path = pathlib.Path(tmp_path)
    config.min_thumb_size = 8

    assert (config.storage_path, config.min_thumb_size) == (tmp_path, 8)


def test_upload_settings():
    config = Config(
        environ={
            'ASGI_LOOK_MAX_UPLOAD_SIZE': '1_048_576',
            'ASGI_LOOK_MAX_IMAGE_PIXELS': '1000000',
            'ASGI_LOOK_IMAGE_WORKERS': '3',
            'ASGI_LOOK_JPEG_QUALITY': '75',
        }
    )

    assert config.max_upload_size == 1_048_576
    assert config.max_image_pixels == 1_000_000
    assert config.image_workers == 3
    assert config.jpeg_quality == 75


def test_upload_defaults():
    config = Config(environ={})

    assert config.max_upload_size == 32 * 1024 * 1024
    assert config.max_image_pixels == 50_000_000
    assert config.image_workers >= 1
    assert config.jpeg_quality == 90


@pytest.mark.parametrize(
    ('name', 'value'),
    [
        ('ASGI_LOOK_MAX_UPLOAD_SIZE', '32MiB'),
        ('ASGI_LOOK_MAX_IMAGE_PIXELS', '0'),
        ('ASGI_LOOK_IMAGE_WORKERS', 'many'),
        ('ASGI_LOOK_JPEG_QUALITY', '101'),
    ],
)
def test_bad_upload_settings_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        Config(environ={name: value})


def test_thumbnail_qualities():
    config = Config(
        environ={'ASGI_LOOK_WEBP_QUALITY': ' 60 ', 'ASGI_LOOK_AVIF_QUALITY': '45'}
    )
    defaults = Config(environ={})

    assert (config.webp_quality, config.avif_quality) == (60, 45)
    assert (defaults.webp_quality, defaults.avif_quality) == (80, 60)


@pytest.mark.parametrize('name', ['ASGI_LOOK_WEBP_QUALITY', 'ASGI_LOOK_AVIF_QUALITY'])
@pytest.mark.parametrize('value', ['0', '101', 'high', '-5'])
def test_a_thumbnail_quality_is_from_1_to_100(name, value):
    with pytest.raises(
        ConfigError, match=f'{name} must be a whole number from 1 up to 100'
    ):
        Config(environ={name: value})


def test_redis_timeout():
    assert Config(environ={}).redis_timeout == 0.25
    assert Config(environ={'ASGI_LOOK_REDIS_TIMEOUT': ' 0.05 '}).redis_timeout == 0.05
    assert Config(environ={'ASGI_LOOK_REDIS_TIMEOUT': '2'}).redis_timeout == 2.0


@pytest.mark.parametrize('value', ['soon', '0', '-0.1', 'nan', 'inf'])
def test_a_redis_timeout_must_bound_the_wait(value):
    with pytest.raises(ConfigError, match='ASGI_LOOK_REDIS_TIMEOUT must be a number'):
        Config(environ={'ASGI_LOOK_REDIS_TIMEOUT': value})


def test_memory_cache_size():
    assert Config(environ={}).memory_cache_size == 64 * 1024 * 1024
    assert Config(environ={'ASGI_LOOK_MEMORY_CACHE_SIZE': '0'}).memory_cache_size == 0
    with pytest.raises(
        ConfigError, match='ASGI_LOOK_MEMORY_CACHE_SIZE must be a whole number from 0'
    ):
        Config(environ={'ASGI_LOOK_MEMORY_CACHE_SIZE': '-1'})


def test_render_processes():
    assert Config(environ={}).render_processes == (os.cpu_count() or 1)
    assert Config(environ={'ASGI_LOOK_RENDER_PROCESSES': '3'}).render_processes == 3
    assert Config(environ={'ASGI_LOOK_RENDER_PROCESSES': '0'}).render_processes == 0
    with pytest.raises(
        ConfigError, match='ASGI_LOOK_RENDER_PROCESSES must be a whole number from 0'
    ):
        Config(environ={'ASGI_LOOK_RENDER_PROCESSES': 'many'})


def test_upload_waiting_settings():
    defaults = Config(environ={})
    assert defaults.upload_memory == 16 * 1024 * 1024
    assert defaults.body_timeout == 30.0
    config = Config(
        environ={'ASGI_LOOK_UPLOAD_MEMORY': '0', 'ASGI_LOOK_BODY_TIMEOUT': '2.5'}
    )
    assert (config.upload_memory, config.body_timeout) == (0, 2.5)
    with pytest.raises(ConfigError, match='ASGI_LOOK_BODY_TIMEOUT must be a number'):
        Config(environ={'ASGI_LOOK_BODY_TIMEOUT': '0'})


def test_events_heartbeat():
    assert Config(environ={}).events.heartbeat == 15.0
    config = Config(environ={'ASGI_LOOK_EVENTS_HEARTBEAT': '2.5'})
    assert config.events.heartbeat == 2.5
    with pytest.raises(ConfigError, match='ASGI_LOOK_EVENTS_HEARTBEAT must be a'):
        Config(environ={'ASGI_LOOK_EVENTS_HEARTBEAT': 'often'})


def test_secret():
    assert Config(environ={}).secret is None
    config = Config(environ={'ASGI_LOOK_SECRET': ' correct-horse-battery '})
    assert config.secret == b'correct-horse-battery'


def test_a_short_secret_is_refused_without_being_repeated():
    with pytest.raises(ConfigError, match='ASGI_LOOK_SECRET must be at least 16') as ex:
        Config(environ={'ASGI_LOOK_SECRET': 'hunter2'})
    assert 'hunter2' not in str(ex.value)


def test_a_misspelled_setting_is_named_with_the_one_meant():
    assert unknown_settings(
        {
            'ASGI_LOOK_REDIS_URL': 'redis://cache.internal',
            'ASGI_LOOK_STORAGE_PATHS': '/srv/images',
        }
    ) == [
        'unknown setting ASGI_LOOK_REDIS_URL (did you mean ASGI_LOOK_REDIS_HOST?)',
        'unknown setting ASGI_LOOK_STORAGE_PATHS '
        '(did you mean ASGI_LOOK_STORAGE_PATH?)',
    ]


def test_an_unknown_setting_like_none_is_named_alone():
    # Each shares no more than its prefix with a setting (as ASGI_LOOK_PORT
    # with ASGI_LOOK_SECRET), which makes no two names alike.
    assert unknown_settings({'ASGI_LOOK_PORT': '8000', 'ASGI_LOOK_DEBUG': ''}) == [
        'unknown setting ASGI_LOOK_DEBUG',
        'unknown setting ASGI_LOOK_PORT',
    ]


def test_the_documented_settings_and_other_variables_are_not_unknown():
    page = pathlib.Path(__file__).parents[1] / 'docs' / 'configuration.md'
    section = page.read_text()
    documented = re.findall(r'^\| `[\w.]+` \| `(ASGI_LOOK_\w+)` \|', section, re.M)
    assert len(documented) >= 14

    assert (
        unknown_settings(
            {
                **dict.fromkeys(documented, '1'),
                'PATH': '/usr/bin',
                'ASGI_LOOKING_GLASS': '1',
                # The tests' own (tests/servers.py), not the service's.
                'ASGI_LOOK_TEST_REDIS_SERVER': '/usr/bin/redis-server',
            }
        )
        == []
    )


def test_one_host_keeps_the_catalog_and_the_images_by_default():
    config = Config(environ={})

    assert (config.database_url, config.storage_url) == (None, None)


def test_several_hosts_share_a_database_and_a_bucket():
    config = Config(
        environ={
            'ASGI_LOOK_DATABASE_URL': ' postgresql://look:pw@db.internal:5432/look ',
            'ASGI_LOOK_STORAGE_URL': 's3://pictures',
        }
    )

    assert config.database_url == 'postgresql://look:pw@db.internal:5432/look'
    assert config.storage_url == 's3://pictures'


@pytest.mark.parametrize('name', ['ASGI_LOOK_DATABASE_URL', 'ASGI_LOOK_STORAGE_URL'])
def test_a_shared_catalog_and_shared_images_go_together(name):
    value = {
        'ASGI_LOOK_DATABASE_URL': 'postgresql://db/look',
        'ASGI_LOOK_STORAGE_URL': 's3://pictures/look',
    }[name]

    with pytest.raises(ConfigError, match='are set together') as ex:
        Config(environ={name: value})
    assert 'ASGI_LOOK_DATABASE_URL and ASGI_LOOK_STORAGE_URL' in str(ex.value)


@pytest.mark.parametrize(
    ('name', 'value'),
    [
        ('ASGI_LOOK_DATABASE_URL', 'mysql://db/look'),
        ('ASGI_LOOK_DATABASE_URL', 'postgresql:///look'),
        ('ASGI_LOOK_DATABASE_URL', 'postgresql://db'),
        ('ASGI_LOOK_DATABASE_URL', 'postgresql://db:port/look'),
        ('ASGI_LOOK_STORAGE_URL', 'pictures'),
        ('ASGI_LOOK_STORAGE_URL', 'gs://pictures'),
        ('ASGI_LOOK_STORAGE_URL', 's3:///prefix'),
    ],
)
def test_a_bad_url_names_its_variable(name, value):
    other = {
        'ASGI_LOOK_DATABASE_URL': 'postgresql://db/look',
        'ASGI_LOOK_STORAGE_URL': 's3://pictures',
    }

    with pytest.raises(ConfigError, match=f'^{name} must be a URL such as '):
        Config(environ={**other, name: value})


def test_a_bad_database_url_does_not_repeat_its_password():
    with pytest.raises(ConfigError) as ex:
        Config(
            environ={
                'ASGI_LOOK_DATABASE_URL': 'postgresql://look:hunter2@db:x/look',
                'ASGI_LOOK_STORAGE_URL': 's3://pictures',
            }
        )

    assert 'hunter2' not in str(ex.value)
    assert 'look:***@db' in str(ex.value)
