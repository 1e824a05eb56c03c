using System.IO.Hashing;
using System.Reflection;
using System.Text;

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
    /// <summary>A stable 64-bit key for this method.</summary>
    public ulong Key { get; } = XxHash64.HashToUInt64(Encoding.UTF8.GetBytes($"{AssemblyName}\n{TypeName}\n{MetadataToken}\n{ModuleVersionId}"));

    /// <summary>Describes <paramref name="method"/>.</summary>
    public static MethodDescriptor For(MethodInfo method)
    {
        var type = method.DeclaringType
            ?? throw new ArgumentException($"Method '{method.Name}' has no declaring type (dynamic methods cannot be sent to a sandbox).", nameof(method));
        return new MethodDescriptor(type.Assembly.FullName!, type.FullName!, method.MetadataToken, method.Module.ModuleVersionId.ToString());
    }
}
