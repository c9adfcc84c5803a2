"""Region candidates of an image and the strategies that pick training targets among them."""
