# want: 3:3 it needs open
door "app" {
  forward = ["8080/tcp"]
  spa {
    port = 62201
  }
  client "a" {
    key_file = "/nonexistent"
  }
}
