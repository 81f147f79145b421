# gunicorn settings for the status API (`appliance serve api` loads this file;
# bind comes from [api] host/port).  The worker is always the station's gthread
# (appliance/api/service.py FairThreadWorker): threads only ever get whole requests,
# read in its event loop within a deadline, so slow clients cannot take them.  Each
# SSE stream holds one thread for at most a minute; all but 8 of the threads may
# stream (sse.Slots), the rest serve /api/v1/health, the API and the dashboard.  One
# worker is plenty for a bench LAN's dashboards and costs ~30 MiB less than two
# (the station must fit a 512 MB Raspberry Pi Zero 2 W); threads carry the load.
worker_class = "appliance.api.service.FairThreadWorker"
workers = 1
threads = 16
worker_connections = 512
timeout = 90
graceful_timeout = 5
keepalive = 5
accesslog = "-"
errorlog = "-"
loglevel = "info"
# No gunicornc control socket: it lives in $HOME and two stations on one host would share it.
control_socket_disable = True
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
