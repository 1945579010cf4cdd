import time
from mailtest import *
from pressroom.mail import send_campaign

def test_smoke(tmp_path, server):
    p = make_project(tmp_path, smtp_section(server))
    add_subscribers(p, 50)
    t = time.time()
    r = send_campaign(load_config(p), "01-welcome")
    print(r.counts, time.time() - t)
    assert server.recorder.count() == 50
    print(repr(server.recorder.messages[0].data[-40:]))
