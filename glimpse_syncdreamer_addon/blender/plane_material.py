"""The material of a view's image plane: the view's colours through the chosen shader (as
Images as Planes offers them: emission, principled, shadeless), its alpha, and an optional
white key."""
from dataclasses import dataclass

import bpy

# White keying works on the smallest linear channel: opaque below LOW, transparent above HIGH.
KEY_WHITE_LOW = 0.80
KEY_WHITE_HIGH = 0.95


@dataclass(frozen=True)
class PlaneLook:
    """How a plane shows its view (core.import_options: SHADERS, INTERPOLATIONS)."""

    key_white: bool
    shader: str
    interpolation: str


def plane_material(label, image, look):
    """The view's colours through the chosen shader (unlit emission, lit Principled BSDF, or
    shadeless: emission for camera rays only), mixed with transparency by the image's alpha, and
    with the white background keyed out when asked."""
    material = bpy.data.materials.new(label)
    if material.node_tree is None:  # Blender 4.x creates materials without nodes
        material.use_nodes = True
    material.cycles.emission_sampling = "NONE"  # not a light source
    material.use_backface_culling = False
    nodes, links = material.node_tree.nodes, material.node_tree.links
    nodes.clear()

    texture = nodes.new("ShaderNodeTexImage")
    texture.image = image
    # Closest (the default): a render through the camera gives back the view's own pixels at any
    # sample count (Linear blends neighbours as soon as several samples jitter around a pixel).
    texture.interpolation = look.interpolation
    texture.extension = "EXTEND"
    shader = surface_shader(nodes, links, texture, look.shader)
    transparent = nodes.new("ShaderNodeBsdfTransparent")
    mix = nodes.new("ShaderNodeMixShader")
    output = nodes.new("ShaderNodeOutputMaterial")
    links.new(transparent.outputs["BSDF"], mix.inputs[1])
    links.new(shader, mix.inputs[2])
    links.new(mix.outputs["Shader"], output.inputs["Surface"])

    alpha = texture.outputs["Alpha"]
    if look.key_white:
        alpha = white_key_alpha(nodes, links, texture, alpha)
    links.new(alpha, mix.inputs["Fac"])

    for column, node in enumerate((texture, shader.node, mix, output)):
        node.location = (300 * column - 600, 0)
    transparent.location = (0, 150)
    return material


def surface_shader(nodes, links, texture, kind):
    """The output socket of the plane's surface shader for `kind` (ImportOptions.shader)."""
    if kind == "PRINCIPLED":
        principled = nodes.new("ShaderNodeBsdfPrincipled")
        links.new(texture.outputs["Color"], principled.inputs["Base Color"])
        return principled.outputs["BSDF"]
    emission = nodes.new("ShaderNodeEmission")
    emission.inputs["Strength"].default_value = 1.0
    links.new(texture.outputs["Color"], emission.inputs["Color"])
    if kind == "EMISSION":
        return emission.outputs["Emission"]
    # SHADELESS, as Images as Planes builds it: the colours for camera rays, nothing for others.
    light_path = nodes.new("ShaderNodeLightPath")
    hidden = nodes.new("ShaderNodeBsdfTransparent")
    camera_only = nodes.new("ShaderNodeMixShader")
    links.new(light_path.outputs["Is Camera Ray"], camera_only.inputs["Fac"])
    links.new(hidden.outputs["BSDF"], camera_only.inputs[1])
    links.new(emission.outputs["Emission"], camera_only.inputs[2])
    light_path.location, hidden.location, emission.location = (-300, 400), (-300, 250), (-300, -150)
    return camera_only.outputs["Shader"]


def white_key_alpha(nodes, links, texture, image_alpha):
    """Alpha that fades to 0 where all three channels are near white, times the image's alpha."""
    separate = nodes.new("ShaderNodeSeparateColor")
    min_rg = nodes.new("ShaderNodeMath")
    min_rg.operation = "MINIMUM"
    min_rgb = nodes.new("ShaderNodeMath")
    min_rgb.operation = "MINIMUM"
    key = nodes.new("ShaderNodeMapRange")
    key.label = "White key"
    key.clamp = True
    key.inputs["From Min"].default_value = KEY_WHITE_LOW
    key.inputs["From Max"].default_value = KEY_WHITE_HIGH
    key.inputs["To Min"].default_value = 1.0
    key.inputs["To Max"].default_value = 0.0
    combined = nodes.new("ShaderNodeMath")
    combined.operation = "MULTIPLY"
    links.new(texture.outputs["Color"], separate.inputs["Color"])
    links.new(separate.outputs[0], min_rg.inputs[0])
    links.new(separate.outputs[1], min_rg.inputs[1])
    links.new(min_rg.outputs[0], min_rgb.inputs[0])
    links.new(separate.outputs[2], min_rgb.inputs[1])
    links.new(min_rgb.outputs[0], key.inputs["Value"])
    links.new(key.outputs["Result"], combined.inputs[0])
    links.new(image_alpha, combined.inputs[1])
    for column, node in enumerate((separate, min_rg, min_rgb, key, combined)):
        node.location = (200 * column - 600, -350)
    return combined.outputs[0]
