"""The shared catalog's work bounded in time, when the database hangs."""

import asyncio

import psycopg
import pytest

from asgilook.catalog.bounded import Bounded
from asgilook.errors import CatalogError


async def test_work_past_its_time_is_answered_at_once_and_cleans_up_alone():
    bounded = Bounded(0.01)
    server_answers = asyncio.Event()
    cleaned_up = asyncio.Event()

    async def statement():
        try:
            await asyncio.Event().wait()
        finally:
            # As psycopg does: ask the server to cancel, wait for its answer.
            await server_answers.wait()
            cleaned_up.set()
            raise psycopg.OperationalError('the statement was cancelled')

    with pytest.raises(CatalogError, match='the catalog database failed'):
        await bounded(statement())
    answered_before_cleanup = not cleaned_up.is_set()
    server_answers.set()
    async with asyncio.timeout(5):
        await cleaned_up.wait()

    assert answered_before_cleanup


async def test_closing_stops_work_that_overran():
    bounded = Bounded(0.01)
    cleaning_up = asyncio.Event()
    stopped = asyncio.Event()

    async def statement():
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            # A clean-up that waits for a server that never answers...
            cleaning_up.set()
            try:
                await asyncio.Event().wait()
            finally:
                # ...until it is told to stop again.
                stopped.set()

    with pytest.raises(CatalogError):
        await bounded(statement())
    async with asyncio.timeout(5):
        await cleaning_up.wait()
        await bounded.close()

    assert stopped.is_set()
