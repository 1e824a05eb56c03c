using System.IO.Hashing;
using System.Reflection;
using System.Text;
using MessagePack;

namespace IsolateGrains.Protocol;

/// <summary>
/// Names a method across the boundary: its assembly, declaring type, metadata token and the module
/// version id of the build. The <see cref="Key"/> is a hash of all four, so it means the same method
/// in every process and every sandbox (snapshots may carry a guest's cache to another host).
/// </summary>
/// <param name="AssemblyName">The assembly's full name.</param>
/// <param name="TypeName">The declaring type's full name (with generic arguments).</param>
/// <param name="MetadataToken">The method's metadata token.</param>
/// <param name="ModuleVersionId">The module version id of the assembly that was compiled.</param>
internal sealed record MethodDescriptor(string AssemblyName, string TypeName, int MetadataToken, string ModuleVersionId)
{
    private ulong? _key;

    /// <summary>
    /// A stable 64-bit key for this method. Computed on first use: the guest reads descriptors but never needs
    /// their key (it comes with the request), and the hashing library is not among the sandbox's assemblies.
    /// </summary>
    public ulong Key => _key ??= XxHash64.HashToUInt64(Encoding.UTF8.GetBytes($"{AssemblyName}\n{TypeName}\n{MetadataToken}\n{ModuleVersionId}"));

    /// <summary>Descriptors are equal when they name the same method (the cached key does not count).</summary>
    public bool Equals(MethodDescriptor? other) =>
        other is not null && AssemblyName == other.AssemblyName && TypeName == other.TypeName
        && MetadataToken == other.MetadataToken && ModuleVersionId == other.ModuleVersionId;

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(AssemblyName, TypeName, MetadataToken, ModuleVersionId);

    /// <summary>Writes the descriptor as <c>[assembly, type, token, moduleVersionId]</c>.</summary>
    public void Write(ref MessagePackWriter writer)
    {
        writer.WriteArrayHeader(4);
        writer.Write(AssemblyName);
        writer.Write(TypeName);
        writer.Write(MetadataToken);
        writer.Write(ModuleVersionId);
    }

    /// <summary>Reads a descriptor written by <see cref="Write"/>; null when the array does not have its four elements.</summary>
    public static MethodDescriptor? Read(ref MessagePackReader reader) =>
        reader.ReadArrayHeader() != 4
            ? null
            : new MethodDescriptor(reader.ReadString() ?? "", reader.ReadString() ?? "", reader.ReadInt32(), reader.ReadString() ?? "");

    /// <summary>Describes <paramref name="method"/>.</summary>
    public static MethodDescriptor For(MethodInfo method)
    {
        var type = method.DeclaringType
            ?? throw new ArgumentException($"Method '{method.Name}' has no declaring type (dynamic methods cannot be sent to a sandbox).", nameof(method));
        return new MethodDescriptor(type.Assembly.FullName!, type.FullName!, method.MetadataToken, method.Module.ModuleVersionId.ToString());
    }
}
