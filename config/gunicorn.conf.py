# gunicorn settings for the status API (`appliance serve api` loads this file;
# bind comes from [api] host/port).  gthread workers: each SSE stream holds one
# thread for at most a minute (it is time-bounded), never a whole worker.  One
# worker is plenty for a bench LAN's dashboards and costs ~30 MiB less than two
# (the station must fit a 512 MB Raspberry Pi Zero 2 W); threads carry the load.
worker_class = "gthread"
workers = 1
threads = 16
timeout = 90
graceful_timeout = 5
keepalive = 5
accesslog = "-"
errorlog = "-"
loglevel = "info"
# No gunicornc control socket: it lives in $HOME and two stations on one host would share it.
control_socket_disable = True
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
