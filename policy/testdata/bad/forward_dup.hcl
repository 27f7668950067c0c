# want: 4:44 192.0.2.10:22/tcp is already listed at
door "app" {
  sequence = ["7000/tcp", "8000/udp"]
  forward  = ["192.0.2.10:22/tcp", "8080", "192.0.2.10:22/tcp"]
}
