"""Model text to a checked model: the syntax tree, the lark parser, names, consts, domains and index spaces."""
