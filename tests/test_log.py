"""The one status channel: INFO as plain lines, warnings marked, one handler however often set up."""

from __future__ import annotations

import io
import logging

from srgan_lib import log


def test_info_plain_warning_marked_and_setup_is_idempotent():
    stream = io.StringIO()
    log.setup(stream=stream)
    log.setup(stream=stream)  # a re-run notebook cell: still one line per message
    logging.getLogger("srgan_lib.data").info("3 images")
    logging.getLogger("srgan_lib.vgg").warning("RANDOM VGG19 weights")
    logging.getLogger("srgan_lib.data").debug("not shown at INFO")
    assert stream.getvalue() == "3 images\nWARNING: RANDOM VGG19 weights\n"
    log.setup(logging.WARNING, stream=stream)
    logging.getLogger("srgan_lib.data").info("hidden at WARNING")
    assert "hidden" not in stream.getvalue()


def test_default_stream_is_stderr_at_the_time_of_the_message(capsys):
    log.setup()
    logging.getLogger("srgan_lib.train").info("finished already")
    assert capsys.readouterr().err == "finished already\n"
