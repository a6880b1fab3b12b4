# RabbitMQ (127.0.0.1:5672, guest/guest)
if ! rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
  rabbitmq-server -detached || true
fi
wait_for RabbitMQ rabbitmq-diagnostics -q ping
