"""Dashboard assets (plain HTML/CSS/JS, no build step), shipped as package data."""
