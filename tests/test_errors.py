"""The tree of domain errors and the table of their HTTP answers."""

import pickle

import falcon
import pytest

from asgilook import errors
from asgilook.http.errors import ERRORS

# One instance of every error a client can meet, with the details it carries.
_RAISED = [
    errors.IncompleteBodyError('the client went away'),
    errors.BodyTimeoutError(2.5),
    errors.EmptyUploadError(),
    errors.UploadTooLargeError(1000),
    errors.MalformedFormError('unexpected form structure'),
    errors.MissingImagePartError(),
    errors.ExtraImagePartError(),
    errors.InvalidImageError('cannot identify image file'),
    errors.DamagedImageError('image file is truncated'),
    errors.ImageTooLargeError((9000, 9000), 50_000_000),
    errors.SideTooLongError((70000, 10), 65500),
    errors.ImageNotFoundError('/images/x.jpeg'),
    errors.ThumbnailNotFoundError((640, 400)),
    errors.ThumbnailFormatError(),
    errors.DeleteTokenMissingError(),
    errors.DeleteTokenInvalidError(),
    errors.PreconditionFailedError(),
    errors.CurrentMatchError(),
    errors.StorageFullError(),
    errors.StorageUnavailableError(),
    errors.StoredImageError('the stored file is not a JPEG'),
    errors.RenderError('the process rendering it died'),
    errors.ImageIdTakenError(8),
    errors.ClientGoneError(),
    errors.LongListsError(4),
]


# Kinds that group others and are never raised themselves.
_GROUPS = {
    errors.BodyError,
    errors.FormError,
    errors.ImageError,
    errors.StorageError,
}


def _below(kind: type) -> set[type]:
    return set().union(*({sub} | _below(sub) for sub in kind.__subclasses__()))


def test_every_error_a_client_can_meet_has_an_answer():
    met = (_below(errors.RequestError) | _below(errors.ServiceError)) - _GROUPS
    assert met == set(ERRORS)
    assert met == {type(ex) for ex in _RAISED}


@pytest.mark.parametrize('ex', _RAISED, ids=lambda ex: type(ex).__name__)
def test_an_answer_says_what_the_error_carries(ex):
    error = ERRORS[type(ex)].error(ex)

    assert error.title
    # The template took every detail: no placeholder is left.
    assert '{' not in error.description
    client_error = isinstance(ex, errors.RequestError)
    assert (400 <= error.status_code < 500) == client_error
    if error.status_code == 503:
        assert int(dict(error.headers or {})['Retry-After']) > 0


def test_an_answer_spells_out_the_details():
    ex = errors.ImageTooLargeError((9000, 8000), 50_000_000)
    description = ERRORS[type(ex)].error(ex).description
    assert '9000x8000 pixels' in description
    assert '50000000 pixels' in description
    assert ERRORS[errors.StorageFullError].error(errors.StorageFullError()).status == (
        falcon.HTTP_507
    )


@pytest.mark.parametrize('ex', _RAISED, ids=lambda ex: type(ex).__name__)
def test_an_error_crosses_from_a_render_process_whole(ex):
    # Render processes send errors back pickled.
    copy = pickle.loads(pickle.dumps(ex))
    assert type(copy) is type(ex)
    assert str(copy) == str(ex)
    assert vars(copy) == vars(ex)
