# want: 4:27 is not an IP address
door "app" {
  sequence = ["7000/tcp", "8000/udp"]
  forward  = ["8080/tcp", "192.0.2.300:22/tcp"]
}
