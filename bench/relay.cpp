// The floor for any proxy on this hop: a single-threaded epoll TCP relay that copies bytes
// between each client and its own server connection without looking at them. No parsing, no
// pooling, no TLS. `make bench` runs it beside the real contenders so the ratios to direct
// PostgreSQL can be read against what one extra loopback hop costs on this machine at all.
//
// Usage: sluice-bench-relay LISTEN_PORT TARGET_PORT   (both on 127.0.0.1)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

int tcp_socket() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

sockaddr_in loopback(int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

// Blocking-style write of a whole buffer on a non-blocking socket: replies here are small, and
// a full socket buffer only means waiting for the peer, which the relay may do.
bool write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n > 0) {
      data += n;
      size -= static_cast<size_t>(n);
    } else if (n < 0 && errno == EAGAIN) {
      usleep(50);
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s LISTEN_PORT TARGET_PORT\n", argv[0]);
    return 2;
  }
  const int target_port = std::atoi(argv[2]);
  int listener = tcp_socket();
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address = loopback(std::atoi(argv[1]));
  if (bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      listen(listener, 1024) != 0) {
    std::perror("listen");
    return 1;
  }
  int poll = epoll_create1(EPOLL_CLOEXEC);
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = listener;
  epoll_ctl(poll, EPOLL_CTL_ADD, listener, &event);
  std::vector<int> peer(1 << 16, -1);  // fd -> the fd it relays to
  std::vector<char> buffer(1 << 16);
  epoll_event ready[64];
  for (;;) {
    int count = epoll_wait(poll, ready, 64, -1);
    for (int i = 0; i < count; ++i) {
      const int fd = ready[i].data.fd;
      if (fd == listener) {
        int client = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (client < 0) continue;
        int server = tcp_socket();
        sockaddr_in target = loopback(target_port);
        // A loopback connect completes at once or fails; the relay waits for it.
        if (connect(server, reinterpret_cast<sockaddr*>(&target), sizeof target) != 0 &&
            errno != EINPROGRESS) {
          close(client);
          close(server);
          continue;
        }
        setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        peer[static_cast<size_t>(client)] = server;
        peer[static_cast<size_t>(server)] = client;
        for (int side : {client, server}) {
          event.events = EPOLLIN;
          event.data.fd = side;
          epoll_ctl(poll, EPOLL_CTL_ADD, side, &event);
        }
        continue;
      }
      const int other = peer[static_cast<size_t>(fd)];
      if (other < 0) continue;
      ssize_t n = recv(fd, buffer.data(), buffer.size(), 0);
      if (n < 0 && errno == EAGAIN) continue;
      if (n <= 0 || !write_all(other, buffer.data(), static_cast<size_t>(n))) {
        peer[static_cast<size_t>(fd)] = peer[static_cast<size_t>(other)] = -1;
        close(fd);
        close(other);
      }
    }
  }
}
