using System.Text.Json.Serialization;

namespace IsolateGrains.Engine.Snapshots;

/// <summary>
/// The module cache's JSON contract, generated at compile time: reflection-based serialization spent
/// hundreds of milliseconds warming up on the first host of every process, more than the rest of a start.
/// </summary>
[JsonSerializable(typeof(ModuleCacheEntry))]
internal sealed partial class ModuleCacheJsonContext : JsonSerializerContext;
